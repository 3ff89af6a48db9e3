"""HTTP surfaces: reporter pages, the browser's JSON API, security middleware."""
