#!/usr/bin/env python3
"""An independent Python client of the DisclosureNode gRPC API.

Proves the API is usable from another language, with nothing but the .proto
files and docs/FORMAT.md: Python stubs are generated from proto/ at run time
(grpcio-tools bundles protoc), and every hash, proof and signature the node
returns is checked here with Python libraries (blake3, cryptography), not
trusted.

    python3 tests/python/client.py <host:port> <writer token> <origin>

Against a running node (plaintext) it defines a matter, uploads a document
(client streaming, with a client-chosen salt), publishes an item, reads it
back, fetches the content, the entries, the checkpoint and an inclusion
proof, and verifies: entry framing (FORMAT.md § 5), the Ed25519 signature of
the entry, canonical encoding of the body (§ 4.1), the hash chain (§ 6),
the leaf hash (§ 2), the inclusion proof per RFC 9162 § 2.1.3.2 with BLAKE3
(§ 8), the Merkle root recomputed from all entries, and the checkpoint's
signed note (§ 10, § 11). Prints one `ok:` line per check; exits 0 only if
every check passed, 1 on a failed check or RPC error, 2 if a package is
missing.
"""

import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "proto"
PROTOS = ["gongkai/v1/event.proto", "gongkai/v1/node.proto"]
RPC_TIMEOUT = 10.0

try:
    import blake3
    import grpc
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError as e:  # the Rust test recognises this exit status
    print(f"MISSING PACKAGE: {e} (pip install -r scripts/requirements-test.txt)")
    sys.exit(2)


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)
    print(f"ok: {what}", flush=True)


# ---------------------------------------------------------------------------
# Stubs


def generate_stubs(out_dir):
    """Runs protoc (from grpcio-tools) on proto/ into out_dir and imports."""
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTOS,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        if "No module named grpc_tools" in r.stderr:
            print("MISSING PACKAGE: grpcio-tools (pip install -r scripts/requirements-test.txt)")
            sys.exit(2)
        raise CheckFailed(f"protoc failed: {r.stderr.strip()}")
    # gongkai/v1/node_pb2.py does `from gongkai.v1 import event_pb2`:
    # out_dir must be on the path (gongkai/ is a namespace package).
    sys.path.insert(0, str(out_dir))
    from gongkai.v1 import event_pb2, node_pb2, node_pb2_grpc

    print(f"ok: generated Python stubs from {', '.join(PROTOS)} with grpc_tools.protoc")
    return event_pb2, node_pb2, node_pb2_grpc


# ---------------------------------------------------------------------------
# Formats (docs/FORMAT.md), written from the spec


def leaf_hash(entry):
    return blake3.blake3(b"\x00" + entry).digest()


def node_hash(left, right):
    return blake3.blake3(b"\x01" + left + right).digest()


def body_hash(body):
    return blake3.blake3(b"\x02" + body).digest()


def content_digest(salt, content):
    return blake3.blake3(content, key=salt).digest()


def split_entry(entry):
    """0x01 || u16be(len) || body || 64-byte signature -> (body, signature)."""
    if len(entry) < 3 + 64:
        raise CheckFailed(f"entry of {len(entry)} bytes is too short")
    if entry[0] != 0x01:
        raise CheckFailed(f"entry version byte is {entry[0]:#04x}, not 0x01")
    n = int.from_bytes(entry[1:3], "big")
    if len(entry) != 3 + n + 64:
        raise CheckFailed(f"entry length {len(entry)} != 3 + {n} + 64")
    return entry[3 : 3 + n], entry[3 + n :]


def verify_event_signature(pubkey, body, sig):
    try:
        Ed25519PublicKey.from_public_bytes(pubkey).verify(sig, b"gongkai/event/v1\x00" + body)
        return True
    except InvalidSignature:
        return False


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 § 2.1.3.2, with BLAKE3 node hashes."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def merkle_root(leaves):
    """RFC 9162 § 2.1.1 MTH over leaf hashes."""
    if not leaves:
        return blake3.blake3(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def parse_checkpoint(text):
    """Signed note -> (note text, origin, size, root, [(name, sig bytes)])."""
    note, sep, sigs = text.partition("\n\n")
    if not sep:
        raise CheckFailed("checkpoint has no blank line before its signatures")
    note += "\n"
    lines = note.split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    signatures = []
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            raise CheckFailed(f"bad signature line {line!r}")
        name, b64 = line[2:].split(" ")
        signatures.append((name, base64.b64decode(b64, validate=True)))
    return note, origin, size, root, signatures


def verify_checkpoint_signature(note, name, signatures, pubkey):
    """FORMAT.md § 10: Ed25519 signer, key id = SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + pubkey).digest()[:4]
    for n, sig in signatures:
        if n == name and sig[:4] == key_id:
            try:
                Ed25519PublicKey.from_public_bytes(pubkey).verify(sig[4:], note.encode())
                return True
            except InvalidSignature:
                return False
    return False


def cst_today():
    """FORMAT.md § 3: the CST date of now."""
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))


# ---------------------------------------------------------------------------
# The run


def run(addr, token, origin, ev, pb, pb_grpc):
    channel = grpc.insecure_channel(addr)
    stub = pb_grpc.DisclosureNodeStub(channel)
    auth = [("authorization", f"Bearer {token}")]
    run_id = f"py-{int(time.time() * 1000)}-{os.getpid()}"
    matter_id, item_id = f"{run_id}-matter", f"{run_id}-item"

    status = stub.GetStatus(pb.GetStatusRequest(origin=origin), timeout=RPC_TIMEOUT)
    check(status.origin == origin, f"GetStatus: origin {status.origin}, size {status.size}")

    # 1. Define a matter.
    matter = ev.Matter(
        category="财政预决算",
        level1="财政预决算",
        level2="部门预算",
        elements=["预算报告"],
        legal_basis="《预算法》第十四条",
        deadline_working_days=20,
        responsible_body="县财政局",
        channels=["政府网站"],
        audience=ev.AUDIENCE_PUBLIC,
        mode=ev.DISCLOSURE_MODE_PROACTIVE,
    )
    r = stub.Append(
        pb.AppendRequest(
            idempotency_key=f"{run_id}-m",
            event=pb.WriteEvent(matter_defined=ev.MatterDefined(matter_id=matter_id, matter=matter)),
        ),
        metadata=auth,
        timeout=RPC_TIMEOUT,
    )
    check(not r.replayed, f"Append matter_defined {matter_id}: index {r.receipt.index}")

    # 2. Upload a document in chunks, with a client-chosen salt and the
    #    commitment computed here: the node refuses it unless its keyed
    #    BLAKE3 agrees with Python's.
    doc = "2026年部门预算 — uploaded by the Python client\n".encode() * 3
    salt = os.urandom(32)
    digest = content_digest(salt, doc)
    chunks = [doc[i : i + 40] for i in range(0, len(doc), 40)]

    def upload_requests():
        yield pb.UploadContentRequest(
            start=pb.UploadStart(
                media_type="text/plain", length=len(doc), salt=salt, expected_digest=digest
            )
        )
        for c in chunks:
            yield pb.UploadContentRequest(chunk=c)

    up = stub.UploadContent(upload_requests(), metadata=auth, timeout=RPC_TIMEOUT)
    content = up.content
    check(
        content.digest == digest and content.length == len(doc),
        f"UploadContent ({len(chunks)} chunks, {len(doc)} bytes): "
        f"digest = BLAKE3-keyed(salt, content) = {digest.hex()[:16]}…",
    )

    # 3. Publish an item with that content.
    publish = pb.AppendRequest(
        idempotency_key=f"{run_id}-p",
        event=pb.WriteEvent(
            published=ev.Published(
                item_id=item_id,
                matter_id=matter_id,
                title="2026年部门预算",
                content=content,
                date_formed=cst_today(),
            )
        ),
    )
    r = stub.Append(publish, metadata=auth, timeout=RPC_TIMEOUT)
    receipt = r.receipt
    check(not r.replayed, f"Append published {item_id}: index {receipt.index}")
    again = stub.Append(publish, metadata=auth, timeout=RPC_TIMEOUT)
    check(
        again.replayed and again.receipt.entry == receipt.entry,
        "Append retried with the same idempotency key: replayed, same entry",
    )

    # Refusals arrive as gRPC status codes (the rule name only in the text).
    def refused(req, metadata, code, text):
        try:
            stub.Append(req, metadata=metadata, timeout=RPC_TIMEOUT)
        except grpc.RpcError as e:
            return e.code() == code and text in (e.details() or "")
        return False

    check(
        refused(publish, [], grpc.StatusCode.UNAUTHENTICATED, "Bearer"),
        "Append without a token: UNAUTHENTICATED",
    )
    dup = pb.AppendRequest()
    dup.CopyFrom(publish)
    dup.idempotency_key = f"{run_id}-dup"
    check(
        refused(dup, auth, grpc.StatusCode.FAILED_PRECONDITION, "item-id-unique"),
        "Append of the same item id under a new key: FAILED_PRECONDITION, rule item-id-unique",
    )

    # 4. The receipt: leaf hash, framing, body, signature.
    entry = receipt.entry
    check(
        receipt.leaf_hash == leaf_hash(entry),
        f"receipt leaf_hash == BLAKE3(0x00 || entry) = {receipt.leaf_hash.hex()}",
    )
    body, sig = split_entry(entry)
    check(True, f"entry framing 0x01 || u16be({len(body)}) || body || 64-byte signature")
    event = ev.EventBody.FromString(body)
    check(
        event.SerializeToString(deterministic=True) == body,
        "body is canonical: protobuf-python re-encodes it byte for byte (FORMAT.md § 4.1)",
    )
    check(
        event.WhichOneof("kind") == "published"
        and event.origin == origin
        and event.index == receipt.index
        and event.published.item_id == item_id
        and event.published.content == content,
        "EventBody decodes: published, origin, index, item id and content as sent",
    )
    signer = event.signer
    check(len(signer) == 32, f"signer {signer.hex()}")
    check(
        verify_event_signature(signer, body, sig),
        'Ed25519 signature over "gongkai/event/v1" || 0x00 || body verifies (cryptography)',
    )

    # 5. Read the item back.
    item = stub.GetItem(pb.GetItemRequest(origin=origin, item_id=item_id), timeout=RPC_TIMEOUT)
    v = item.item
    check(
        v.item_id == item_id
        and v.matter_id == matter_id
        and v.category == "财政预决算"
        and v.title == "2026年部门预算"
        and v.status == pb.ITEM_STATUS_CURRENT
        and v.content == content
        and v.published_index == receipt.index
        and v.published_time_ms == event.time_ms,
        f"GetItem {item_id}: current, title, category, content and index as published",
    )
    check(
        len(item.history) == 1
        and item.history[0].index == receipt.index
        and item.history[0].entry == entry,
        "GetItem history: the receipt's entry, verbatim",
    )

    # 6. The content, streamed back (salt first).
    salt_back, got = None, bytearray()
    for m in stub.GetContent(
        pb.GetContentRequest(origin=origin, digest=content.digest), timeout=RPC_TIMEOUT
    ):
        if m.WhichOneof("part") == "header":
            salt_back = m.header.salt
        else:
            got += m.chunk
    check(
        salt_back == salt and bytes(got) == doc and content_digest(salt_back, bytes(got)) == digest,
        "GetContent: salt and bytes round-trip, BLAKE3-keyed(salt, content) == digest",
    )

    # 7. A checkpoint that covers the entry (the node checkpoints on a timer).
    deadline = time.monotonic() + 10
    while True:
        text = stub.GetCheckpoint(pb.GetCheckpointRequest(origin=origin), timeout=RPC_TIMEOUT).checkpoint
        note, cp_origin, size, root, sigs = parse_checkpoint(text)
        if size > receipt.index:
            break
        if time.monotonic() > deadline:
            raise CheckFailed(f"no checkpoint covers index {receipt.index} (newest: size {size})")
        time.sleep(0.05)
    check(
        cp_origin == origin and len(root) == 32,
        f"GetCheckpoint: origin, size {size}, root {root.hex()} (line 3, base64)",
    )
    check(
        verify_checkpoint_signature(note, origin, sigs, signer),
        "checkpoint signed note: Ed25519 signature by the signer's key under the origin's name",
    )

    # 8. The inclusion proof by leaf hash, verified in Python.
    p = stub.GetInclusionProof(
        pb.GetInclusionProofRequest(origin=origin, tree_size=size, leaf_hash=receipt.leaf_hash),
        timeout=RPC_TIMEOUT,
    )
    check(
        p.index == receipt.index and p.tree_size == size and p.entry == entry,
        f"GetInclusionProof by leaf hash: index {p.index}, tree size {p.tree_size}, "
        f"{len(p.proof)} hashes",
    )
    check(
        all(len(h) == 32 for h in p.proof)
        and verify_inclusion(p.index, p.tree_size, leaf_hash(p.entry), list(p.proof), root),
        "inclusion proof verifies against the checkpoint root (RFC 9162 § 2.1.3.2, BLAKE3)",
    )
    bad_root = bytes([root[0] ^ 1]) + root[1:]
    check(
        not verify_inclusion(p.index, p.tree_size, leaf_hash(p.entry), list(p.proof), bad_root)
        and not verify_inclusion(p.index, p.tree_size, leaf_hash(p.entry + b"x"), list(p.proof), root)
        and not verify_event_signature(signer, body + b"x", sig),
        "negative controls: a wrong root, a wrong leaf and a wrong body are rejected",
    )
    check(
        not p.checkpoint or parse_checkpoint(p.checkpoint)[3] == root,
        "proof's checkpoint has the same root",
    )

    # 9. The whole log up to the checkpoint: root and hash chain.
    entries = []
    while len(entries) < size:
        g = stub.GetEntries(
            pb.GetEntriesRequest(origin=origin, start=len(entries), limit=size - len(entries)),
            timeout=RPC_TIMEOUT,
        )
        if g.start != len(entries) or not g.entries:
            raise CheckFailed(f"GetEntries from {len(entries)} returned start {g.start}")
        entries.extend(g.entries)
    entries = entries[:size]
    check(
        merkle_root([leaf_hash(e) for e in entries]) == root,
        f"GetEntries: Merkle root recomputed over all {size} entries == checkpoint root",
    )
    prev = bytes(32)
    for i, e in enumerate(entries):
        b, s = split_entry(e)
        eb = ev.EventBody.FromString(b)
        if eb.index != i or eb.prev_hash != prev or eb.origin != origin:
            raise CheckFailed(f"chain broken at index {i}")
        if not verify_event_signature(eb.signer, b, s):
            raise CheckFailed(f"bad signature at index {i}")
        prev = body_hash(b)
    check(
        True,
        f"hash chain: prev_hash == BLAKE3(0x02 || previous body), signatures valid, indices 0..{size - 1}",
    )
    channel.close()


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 64
    addr, token, origin = sys.argv[1:]
    try:
        with tempfile.TemporaryDirectory(prefix="gongkai-py-stubs-") as out:
            ev, pb, pb_grpc = generate_stubs(Path(out))
            run(addr, token, origin, ev, pb, pb_grpc)
    except CheckFailed as e:
        print(f"FAILED: {e}")
        return 1
    except grpc.RpcError as e:
        print(f"FAILED: RPC error {e.code()}: {e.details()}")
        return 1
    print("ALL CHECKS PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
