# Browser assets: libsodium.js pinned by package-lock.json, bundled by esbuild.
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY build.mjs esbuild.options.mjs ./
COPY static ./static
RUN node build.mjs

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PORTAL_DATA_DIR=/data PORTAL_KEYS=/keys/organization.json PORTAL_BRANDING=/keys/branding \
    PORTAL_BIND=0.0.0.0:8000
RUN useradd --system --create-home --uid 10001 portal
WORKDIR /app
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY portal ./portal
COPY templates ./templates
COPY static ./static
COPY --from=assets /build/static/dist ./static/dist
RUN pip install --no-cache-dir -e . && mkdir -p /data /keys && chown portal /data
USER portal
VOLUME ["/data", "/keys"]
EXPOSE 8000
CMD ["gunicorn", "portal:create_app()"]
