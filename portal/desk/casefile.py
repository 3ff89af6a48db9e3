"""A verifiable case file for a lawyer or a court (``portal desk export-case``),
and its check (``portal verify-case``), which needs nothing but the folder and,
ideally, the organization's published ``organization.json``.

The folder holds::

    case.html            the case, print-ready, no scripts
    evidence/…           the verified evidence files, as the reporter sent them
    custody.jsonl        the custody entries about this case, as the log holds them
    manifest.json        every file's SHA-256 and size, the case, the custody log's
                         head at export, who exported it and when
    manifest.sig         Ed25519 signature of manifest.json by the desk's key
    signing-key.pem      the desk's public signing key (compare its fingerprint!)
    SHA256SUMS           for `sha256sum -c`
    VERIFY.txt           how to check all this without our software

The signature proves the manifest came from the holder of the desk's signing
key, and the manifest fixes every other byte by its hash. The custody entries
are checked one by one (each entry's hash covers its content); that they sit in
the desk's unbroken log is checked on the desk (`portal desk verify-log`),
whose head at the moment of export the signed manifest names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jinja2 import Environment, FileSystemLoader, select_autoescape
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from portal.common.atomic import atomic_write, fsync_dir
from portal.common.errors import NamedError
from portal.common.questionnaire import Questionnaire
from portal.common.safe_text import clean_name
from portal.desk import cases as desk_cases
from portal.desk import evidence, layout
from portal.desk.custody import entry_hash
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from portal.protocol.organization import Organization, fingerprint, key_id
from portal.protocol.replies import STATUS_LABELS

ROOT = Path(__file__).resolve().parents[2]
MANIFEST, SIGNATURE, KEY, SUMS, README = (
    "manifest.json",
    "manifest.sig",
    "signing-key.pem",
    "SHA256SUMS",
    "VERIFY.txt",
)
UNSIGNED = {SIGNATURE, SUMS}  # manifest.json covers everything else, and itself is signed


class CaseFileError(NamedError, ValueError):
    """The folder cannot be written (it is not empty) or is not a case file at all."""

    REASON = "case_file"


@dataclass(frozen=True)
class Exported:
    folder: Path
    files: int
    evidence: int
    manifest_sha256: str
    left_out: tuple[str, ...]  # evidence not written: damaged or not imported yet


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _render(
    view: desk_cases.CaseView,
    org: Organization,
    files: list[dict[str, Any]],
    definitions: dict[str, Questionnaire],
) -> str:
    env = Environment(
        loader=FileSystemLoader(ROOT / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    return env.get_template("desk/casefile.html").render(
        case=view,
        organization=org,
        layouts=[layout.lay_out(i.content, definitions) for i in view.items],
        status_labels=STATUS_LABELS,
        files=files,
        clean_name=clean_name,
    )


def export_case(store: DeskStore, keys: DeskKeys, case: str, out: Path) -> Exported:
    """Write the case file for ``case`` into the empty (or new) folder ``out``."""
    view = desk_cases.show_case(store, keys, case, mark=False)
    if out.exists() and any(out.iterdir()):
        raise CaseFileError(f"{out} is not empty: a case file is written into a new folder")
    (out / "evidence").mkdir(parents=True, exist_ok=True)
    shown: list[dict[str, Any]] = []
    left_out: list[str] = []
    taken: set[str] = set()
    with store.changing():
        for item_number, item in enumerate(view.items, start=1):
            for f in evidence.files_of(item.content, view.case):
                f = dataclasses.replace(f, item=item_number)
                checked = evidence.check(store, f)
                if checked.state != "verified" or checked.sha256 is None:
                    left_out.append(f"{f.name or f.upload}: {checked.state}")
                    continue
                name = evidence.safe_name(
                    evidence.download_name(f.case, f.item, f.name), taken, "file"
                )
                target = out / "evidence" / name
                digest = hashlib.sha256()
                with target.open("wb") as handle:
                    for chunk in evidence.plaintext(store, f, checked.blob):
                        digest.update(chunk)
                        handle.write(chunk)
                    handle.flush()
                    os.fsync(handle.fileno())
                if digest.hexdigest() != checked.sha256:
                    target.unlink()
                    left_out.append(f"{f.name or f.upload}: changed while it was written")
                    continue
                shown.append(
                    {
                        "path": f"evidence/{name}",
                        "item": item_number,
                        "upload": f.upload,
                        "sha256": checked.sha256,
                        "name": f.name,
                        "size": f.size,
                    }
                )
        entries = [
            e for e in store.custody.entries() if e.get("details", {}).get("case") == view.case
        ]
        atomic_write(
            out / "case.html",
            _render(view, keys.organization, shown, layout.known(store)).encode(),
            0o644,
        )
        atomic_write(
            out / "custody.jsonl",
            "".join(
                json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in entries
            ).encode(),
            0o644,
        )
        pem = Ed25519PublicKey.from_public_bytes(keys.organization.verify_key).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        atomic_write(out / KEY, pem, 0o644)
        atomic_write(out / README, _verify_text(keys.organization).encode(), 0o644)
        n, head = store.custody.head()
        listed = sorted(
            p for p in out.rglob("*") if p.is_file() and p.name not in (MANIFEST, *UNSIGNED)
        )
        manifest: dict[str, Any] = {
            "v": 1,
            "case": {"id": view.case, "name": view.name},
            "organization": {
                "name": keys.organization.name,
                "verify_kid": keys.organization.verify_kid,
            },
            "exported_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "exported_by": keys.person,
            "custody_head": {"n": n, "hash": head},
            "custody_entries": [{"n": e["n"], "hash": e["hash"]} for e in entries],
            "files": [
                {
                    "path": p.relative_to(out).as_posix(),
                    "sha256": _sha256(p),
                    "size": p.stat().st_size,
                }
                for p in listed
            ],
        }
        body = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
        atomic_write(out / MANIFEST, body, 0o644)
        atomic_write(out / SIGNATURE, keys.signing.sign(body).signature, 0o644)
        sums = [
            f"{_sha256(p)}  {p.relative_to(out).as_posix()}\n"
            for p in sorted(q for q in out.rglob("*") if q.is_file() and q.name != SUMS)
        ]
        atomic_write(out / SUMS, "".join(sums).encode(), 0o644)
        fsync_dir(out)
    manifest_sha256 = hashlib.sha256(body).hexdigest()
    store.custody.append(
        "case_file",
        keys.person,
        case=view.case,
        folder=out.name,  # its name only: the path would travel in later case files
        manifest_sha256=manifest_sha256,
        files=[{"path": f["path"], "sha256": f["sha256"]} for f in shown],
    )
    return Exported(out, len(manifest["files"]), len(shown), manifest_sha256, tuple(left_out))


def _verify_text(org: Organization) -> str:
    signer = fingerprint(org.verify_kid)
    return f"""How to check this case file without the portal's software
============================================================

This folder was written by the desk of {org.name}. Its signing key's
fingerprint is:

    {signer}

Compare it with the one the organization publishes (the "verify" "kid" of its
organization.json, grouped in fours). A matching fingerprint is what makes the
signature mean something: anyone can sign with a key of their own.

1. The signature over manifest.json (OpenSSL 3 or later):

       openssl pkeyutl -verify -pubin -inkey {KEY} -rawin \\
           -in {MANIFEST} -sigfile {SIGNATURE}

   It prints "Signature Verified Successfully". The key's fingerprint is the
   BLAKE2b-128 of its 32 raw bytes:

       openssl pkey -pubin -in {KEY} -outform DER | tail -c 32 | b2sum -l 128

2. Every file against its SHA-256 (GNU coreutils):

       sha256sum -c {SUMS}

   Every line must say OK. {SUMS} itself is not signed: manifest.json lists
   the same SHA-256 for every file, and it is signed; compare them, or run
   `portal verify-case .` which does all of this.

3. custody.jsonl holds the desk's custody entries about this case. Each
   entry's "hash" is the SHA-256 of the entry without that field (JSON, keys
   sorted, no spaces); the desk's own log links them in one chain whose head at
   export is in manifest.json ("custody_head").
"""


# --- checking a case file ---------------------------------------------------------


@dataclass
class Verdict:
    """What holds and what does not; ``ok`` only when every check passed."""

    signer: str = ""  # the signing key's fingerprint, to compare with the published one
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # item, held, why

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(held for _, held, _ in self.checks)

    def note(self, item: str, held: bool, why: str = "") -> None:
        self.checks.append((item, held, why))


def _raw_key(pem: bytes) -> bytes:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify_case(folder: Path, organization: Organization | None = None) -> Verdict:
    """Check a case file: the signature (against ``organization``'s key when given,
    else the key in the folder, whose fingerprint must then be compared by a
    person), every file's hash, no file added or missing, every custody entry."""
    verdict = Verdict()
    try:
        body = (folder / MANIFEST).read_bytes()
        signature = (folder / SIGNATURE).read_bytes()
    except OSError as exc:
        raise CaseFileError(f"{folder} is not a case file: {exc}") from exc
    try:
        in_folder: bytes | None = _raw_key((folder / KEY).read_bytes())
    except (OSError, ValueError):
        in_folder = None
        verdict.note(KEY, False, "not a readable Ed25519 public key")
    key = organization.verify_key if organization is not None else in_folder
    if key is None:
        verdict.note(SIGNATURE, False, "no key to check it with (give --organization)")
        return verdict
    verdict.signer = fingerprint(key_id(key))
    if organization is not None and in_folder is not None:
        verdict.note(
            KEY, in_folder == key, "" if in_folder == key else "not the organization's key"
        )
    try:
        VerifyKey(key).verify(body, signature)
        verdict.note(SIGNATURE, True)
    except (BadSignatureError, ValueError):
        verdict.note(SIGNATURE, False, "the signature does not match manifest.json")
        return verdict
    try:
        manifest = _manifest(body)
    except (ValueError, RecursionError) as exc:
        verdict.note(MANIFEST, False, f"signed, but not a case file manifest ({exc})")
        return verdict
    listed = {str(f["path"]): f for f in manifest["files"]}
    present, odd = _walk(folder)
    for path in odd:
        verdict.note(path, False, "not a plain file (a link, a device or a folder of its own)")
    held_files: set[str] = set()
    for path in sorted(listed):
        if path not in present:
            verdict.note(path, False, "missing")
            continue
        try:
            actual, size = _sha256_and_size(folder / path)
        except OSError as exc:
            verdict.note(path, False, f"cannot be read ({exc.strerror})")
            continue
        held = actual == listed[path]["sha256"] and size == listed[path]["size"]
        if held:
            held_files.add(path)
        verdict.note(path, held, "" if held else "its SHA-256 is not the signed one")
    for path in sorted(present - set(listed)):
        verdict.note(path, False, "not in the signed manifest (added)")
    signed_entries = {(int(e["n"]), str(e["hash"])) for e in manifest["custody_entries"]}
    # The entries are read only once their file is the signed one: nothing unsigned
    # is parsed.
    if "custody.jsonl" in held_files:
        seen: set[tuple[int, str]] = set()
        for number, line in enumerate(_lines(folder / "custody.jsonl"), start=1):
            item = f"custody.jsonl entry {number}"
            try:
                entry = json.loads(line)
                key_pair = (int(entry["n"]), str(entry["hash"]))
                held = entry_hash(entry) == entry["hash"] and key_pair in signed_entries
            except (ValueError, KeyError, TypeError, RecursionError, UnicodeError):
                verdict.note(item, False, "not a custody entry")
                continue
            seen.add(key_pair)
            verdict.note(item, held, "" if held else "changed since the desk wrote it")
        for missing in sorted(signed_entries - seen):
            verdict.note(f"custody entry {missing[0]}", False, "missing from custody.jsonl")
    elif signed_entries:
        verdict.note("custody entries", False, "custody.jsonl is not the signed one")
    head_n = int(manifest["custody_head"]["n"])
    beyond = [n for n, _ in signed_entries if n > head_n]
    verdict.note("custody head", not beyond, "" if not beyond else "entries after the signed head")
    return verdict


def _manifest(body: bytes) -> dict[str, Any]:
    """The manifest's shape, checked (even a signed one is read defensively)."""
    doc = json.loads(body)
    if not isinstance(doc, dict) or type(doc.get("v")) is not int:
        raise ValueError("not an object")
    files, entries, head = doc.get("files"), doc.get("custody_entries"), doc.get("custody_head")
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("path"), str)
        and isinstance(f.get("sha256"), str)
        and type(f.get("size")) is int
        for f in files
    ):
        raise ValueError("its file list is malformed")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and type(e.get("n")) is int and isinstance(e.get("hash"), str)
        for e in entries
    ):
        raise ValueError("its custody entries are malformed")
    if not isinstance(head, dict) or type(head.get("n")) is not int:
        raise ValueError("its custody head is malformed")
    return doc


def _walk(folder: Path) -> tuple[set[str], list[str]]:
    """Every plain file under ``folder`` (relative paths), and everything else that
    is there: links (never followed), devices, pipes, sockets, empty folders. The
    unsigned names are set aside only at the top of the folder."""
    files: set[str] = set()
    odd: list[str] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        here = Path(root)
        for d in dirs:
            if (here / d).is_symlink():
                odd.append((here / d).relative_to(folder).as_posix())
        if here != folder and not dirs and not names:
            odd.append(here.relative_to(folder).as_posix())
        for name in names:
            path = here / name
            relative = path.relative_to(folder).as_posix()
            if relative in (MANIFEST, *UNSIGNED):
                continue
            if stat.S_ISREG(path.lstat().st_mode):
                files.add(relative)
            else:
                odd.append(relative)
    return files, sorted(odd)


def _sha256_and_size(path: Path) -> tuple[str, int]:
    """A plain file's SHA-256 and size, read without following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(0, "not a plain file")
        digest, size = hashlib.sha256(), 0
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _lines(path: Path) -> Iterable[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        yield from (line for line in handle if line.strip())
