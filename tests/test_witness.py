"""Witnessing (c2sp.org/tlog-witness), both directions, on SQLite and PostgreSQL.

Two deployments — a national log and a province log — each witness the other through the real
HTTP app of the other (Litestar's TestClient, no network); a fork of the national log (same
origin and key, other entries, another database) is refused and leaves the witness's state
untouched; every refusal answers with the status the spec prescribes.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.app import create_app
from api.cli import main
from api.context import Context, load_or_create_log_signer
from api.routes.witness import (
    load_or_create_witness_signer,
    request_cosignatures,
    witness_name,
)
from api.settings import Settings
from ledger import merkle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import CosignatureVerifier, verified_cosignatures
from ledger.errors import FormatError, SignatureError
from ledger.note import NoteSigner, NoteVerifier, open_note, parse_note, sign_note
from ledger.witness import (
    SIZE_CONTENT_TYPE,
    AddCheckpoint,
    WitnessError,
    accept_cosignatures,
    check_extends,
    format_add_checkpoint,
    parse_add_checkpoint,
    parse_size_body,
)
from ledger.witness_models import (
    add_checkpoint,
    record_witness_state,
    witness_state,
    witnessed_state,
)
from tests.conftest import PG_TEMPLATE, _pg_admin_engine
from tests.paths import VECTORS

NATIONAL = "national.example/log"
PROVINCE = "sichuan.example/log"


# --------------------------------------------------------------------------------------------
# Fixtures: more databases of the kind under test, and two deployments
# --------------------------------------------------------------------------------------------


@pytest.fixture
def new_db(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], str]]:
    """Makes further fresh, migrated databases of the same kind as ``db_url``."""
    made: list[str] = []

    def make() -> str:
        if make_url(db_url).get_backend_name() == "sqlite":
            template: Path = request.getfixturevalue("sqlite_template")
            path = tmp_path / f"extra{len(made)}.db"
            shutil.copyfile(template, path)
            made.append("")
            return f"sqlite:///{path}"
        request.getfixturevalue("pg_template")
        name = f"celedger_t_{secrets.token_hex(6)}"
        eng = _pg_admin_engine()
        with eng.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{PG_TEMPLATE}"'))
        eng.dispose()
        made.append(name)
        return make_url(db_url).set(database=name).render_as_string(hide_password=False)

    yield make
    names = [n for n in made if n]
    if names:
        eng = _pg_admin_engine()
        with eng.connect() as c:
            for n in names:
                c.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
        eng.dispose()


def _settings(data_dir: Path, db: str, origin: str, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db,
        data_dir=data_dir,
        origin=origin,
        public_url="http://testserver",
        **extra,
    )


@dataclass
class Deployment:
    settings: Settings
    ctx: Context
    http: TestClient[Any]
    log_vkey: str
    witness_vkey: str

    @property
    def log_verifier(self) -> NoteVerifier:
        return NoteVerifier.from_vkey(self.log_vkey)

    @property
    def witness_verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier.from_vkey(self.witness_vkey)

    def append(self, n: int, tag: str = "") -> None:
        with self.ctx.db.writer() as s:
            start = self.ctx.log.size(s)
            self.ctx.log.append(
                s,
                [
                    ("policy", b'{"kind":"policy","n":%d,"t":"%s","v":1}' % (i, tag.encode()))
                    for i in range(start, start + n)
                ],
            )

    def latest(self) -> tuple[int, str]:
        with self.ctx.db.reader() as s:
            cp = self.ctx.log.latest_checkpoint(s)
            assert cp is not None
            return int(cp.size), str(cp.note)


@pytest.fixture
def pair(db_url: str, new_db: Callable[[], str], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The national and the province deployment, each witnessing the other's log."""
    dirs = {"national": tmp_path / "national", "province": tmp_path / "province"}
    dbs = {"national": db_url, "province": new_db()}
    origins = {"national": NATIONAL, "province": PROVINCE}
    keys: dict[str, tuple[str, str]] = {}
    for who in dirs:
        bare = _settings(dirs[who], dbs[who], origins[who])
        keys[who] = (
            load_or_create_log_signer(bare).verifier().to_vkey(),
            load_or_create_witness_signer(bare).verifier().to_vkey(),
        )
    other = {"national": "province", "province": "national"}
    deployments: dict[str, Deployment] = {}
    stack: list[Any] = []
    for who in dirs:
        peer = other[who]
        s = _settings(
            dirs[who],
            dbs[who],
            origins[who],
            witness_logs=[keys[peer][0]],
            witnesses=[f"{keys[peer][1]} http://{peer}.test/witness"],
        )
        ctx = Context.from_settings(s)
        tc: TestClient[Any] = TestClient(app=create_app(s, context=ctx))
        tc.__enter__()
        stack.append((ctx, tc))
        deployments[who] = Deployment(s, ctx, tc, keys[who][0], keys[who][1])
    deployments["make_db"] = new_db  # type: ignore[assignment]
    yield deployments
    for ctx, tc in stack:
        tc.__exit__(None, None, None)
        ctx.close()


def _post(witness: Deployment, body: bytes) -> Any:
    return witness.http.post("/witness/add-checkpoint", content=body)


def _served_cosigners(d: Deployment, witness: Deployment, path: str = "/log/checkpoint") -> Any:
    r = d.http.get(path)
    assert r.status_code == 200, r.text
    note = open_note(r.text, [d.log_verifier, witness.witness_verifier])
    cp = Checkpoint.parse(note.text)
    return cp, verified_cosignatures(note, [witness.witness_verifier])


# --------------------------------------------------------------------------------------------
# Both directions, growth over several appends
# --------------------------------------------------------------------------------------------


def test_two_deployments_witness_each_other(pair: dict[str, Any]) -> None:
    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    assert witness_name(nat.settings) == "national.example/witness"

    # An empty log has nothing to cosign.
    assert request_cosignatures(nat.ctx, http=prov.http) == []

    # Sizes chosen to cross tile boundaries (256) and a power of two, with one-entry steps.
    for n in (1, 1, 5, 249, 1, 300, 256, 3):
        t0 = int(datetime.now(UTC).timestamp())
        nat.append(n)
        size, _note = nat.latest()
        (res,) = request_cosignatures(nat.ctx, http=prov.http)
        assert (res.outcome, res.size, res.witness_size) == ("cosigned", size, size), res
        # The province's witness state moved to exactly the national log's new tree.
        with prov.ctx.db.reader() as s:
            state = witnessed_state(s, NATIONAL)
            assert state is not None and state.size == size
            with nat.ctx.db.reader() as ns:
                assert state.root_hash == nat.ctx.log.root(ns, size)
            assert state.log_vkey == nat.log_vkey
        # The national log serves its checkpoint with the province's cosignature.
        cp, cosigs = _served_cosigners(nat, prov)
        assert cp.size == size and cp.origin == NATIONAL
        ((v, ts),) = cosigs
        assert v.name == "sichuan.example/witness"
        assert t0 - 1 <= ts <= int(datetime.now(UTC).timestamp()) + 1
        # Asking again changes nothing.
        (again,) = request_cosignatures(nat.ctx, http=prov.http)
        assert again.outcome == "up-to-date"
    with nat.ctx.db.reader() as s:
        assert witness_state(
            s, f"{prov.witness_verifier.name}+{prov.witness_verifier.key_id.hex()}"
        ) == (size, None)

    # The other direction, on the same two apps.
    prov.append(7)
    (res,) = request_cosignatures(prov.ctx, http=nat.http)
    assert res.outcome == "cosigned" and res.size == 7
    prov.append(1)
    (res,) = request_cosignatures(prov.ctx, http=nat.http)
    assert res.outcome == "cosigned" and res.size == 8
    cp, ((v, _ts),) = _served_cosigners(prov, nat)
    assert cp.size == 8 and v.name == "national.example/witness"
    with nat.ctx.db.reader() as s:
        state = witnessed_state(s, PROVINCE)
        assert state is not None and state.size == 8


def test_cosigned_checkpoint_route_lags_behind_latest(pair: dict[str, Any]) -> None:
    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    assert nat.http.get("/log/cosigned-checkpoint").status_code == 404
    nat.append(10)
    assert request_cosignatures(nat.ctx, http=prov.http)[0].outcome == "cosigned"
    nat.append(2)  # not yet witnessed
    r = nat.http.get("/log/checkpoint")
    note = open_note(r.text, [nat.log_verifier, prov.witness_verifier])
    assert Checkpoint.parse(note.text).size == 12
    assert verified_cosignatures(note, [prov.witness_verifier]) == []
    cp, cosigs = _served_cosigners(nat, prov, "/log/cosigned-checkpoint")
    assert cp.size == 10 and len(cosigs) == 1


def test_log_learns_the_witness_size_from_a_409(pair: dict[str, Any]) -> None:
    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    nat.append(20)
    request_cosignatures(nat.ctx, http=prov.http)
    nat.append(30)
    key = f"{prov.witness_verifier.name}+{prov.witness_verifier.key_id.hex()}"
    # The national log forgets what it knew (e.g. a restored database): it will send old 7.
    with nat.ctx.db.writer() as s:
        record_witness_state(s, key, 7, None, datetime.now(UTC))
    (res,) = request_cosignatures(nat.ctx, http=prov.http)
    assert (res.outcome, res.size, res.witness_size) == ("cosigned", 50, 50), res


# --------------------------------------------------------------------------------------------
# Refusals, each with the status the spec prescribes
# --------------------------------------------------------------------------------------------


def test_stale_old_size_is_409_with_the_witness_size(pair: dict[str, Any]) -> None:
    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    nat.append(40)
    request_cosignatures(nat.ctx, http=prov.http)
    nat.append(3)
    size, note = nat.latest()
    with nat.ctx.db.reader() as s:
        proof = nat.ctx.log.consistency_proof(s, 20, size)
    for old, pf in ((0, []), (20, proof), (size, [])):
        r = _post(prov, format_add_checkpoint(old, pf, note))
        assert r.status_code == 409, (old, r.text)
        # Exactly the spec's content type: a Go client compares the header as a whole.
        assert r.headers["content-type"] == SIZE_CONTENT_TYPE
        assert r.content == b"40\n" and parse_size_body(r.content) == 40


def test_forked_log_is_refused_and_the_witness_state_is_unchanged(pair: dict[str, Any]) -> None:
    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    nat.append(300, "real")
    request_cosignatures(nat.ctx, http=prov.http)
    with prov.ctx.db.reader() as s:
        before = witnessed_state(s, NATIONAL)
    assert before is not None and before.size == 300

    # The same origin and key over other entries, on another database: a split view.
    fork_settings = nat.settings.model_copy(update={"database_url": pair["make_db"]()})
    fork = Context.from_settings(fork_settings)
    try:
        assert fork.log.signer.key_id == nat.ctx.log.signer.key_id
        with fork.db.writer() as s:
            fork.log.append(s, [("policy", b'{"fork":%d}' % i) for i in range(300)])
        with fork.db.reader() as s:
            fork_cp = fork.log.latest_checkpoint(s)
            assert fork_cp is not None
            fork_note_300 = str(fork_cp.note)

        # Same size, other root: 409 (with the witness's size), directly and through the client.
        r = _post(prov, format_add_checkpoint(300, [], fork_note_300))
        assert r.status_code == 409 and r.content == b"300\n"
        (res,) = request_cosignatures(fork, http=prov.http)
        assert res.outcome == "refused" and "fork" in res.detail, res

        # Larger tree: its consistency proof cannot start from the cosigned tree: 422.
        with fork.db.writer() as s:
            fork.log.append(s, [("policy", b'{"fork":%d}' % i) for i in range(300, 310)])
        with fork.db.reader() as s:
            proof = fork.log.consistency_proof(s, 300, 310)
            fork_cp = fork.log.latest_checkpoint(s)
            assert fork_cp is not None
        r = _post(prov, format_add_checkpoint(300, proof, str(fork_cp.note)))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "bad-consistency-proof"
        (res,) = request_cosignatures(fork, http=prov.http)
        assert res.outcome == "refused" and "422" in res.detail, res
        # Nothing the fork sent moved the witness.
        with prov.ctx.db.reader() as s:
            assert witnessed_state(s, NATIONAL) == before
    finally:
        fork.close()

    # The real log still extends what was cosigned and is still cosigned.
    nat.append(10, "real")
    (res,) = request_cosignatures(nat.ctx, http=prov.http)
    assert res.outcome == "cosigned" and res.size == 310


def test_concurrent_requests_cannot_roll_the_state_back(pair: dict[str, Any]) -> None:
    """Eight requests from the same old size race: exactly one is cosigned (the check and the
    update are one step under a row lock), the others get 409 — none rolls the state back."""
    import threading

    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    nat.append(10)
    request_cosignatures(nat.ctx, http=prov.http)
    bodies = []
    for _ in range(8):
        nat.append(1)
        size, note = nat.latest()
        with nat.ctx.db.reader() as s:
            bodies.append(
                format_add_checkpoint(10, nat.ctx.log.consistency_proof(s, 10, size), note)
            )
    trusted = {NATIONAL: (nat.log_verifier,)}
    signer = load_or_create_witness_signer(prov.settings)
    barrier = threading.Barrier(len(bodies))
    outcomes: list[int] = []

    def submit(body: bytes) -> None:
        req = parse_add_checkpoint(body)
        barrier.wait()
        try:
            with prov.ctx.db.writer() as s:
                add_checkpoint(s, req, trusted, signer, datetime.now(UTC))
            outcomes.append(req.checkpoint.size)
        except WitnessError as exc:
            assert exc.status == 409, exc
            outcomes.append(-1)

    threads = [threading.Thread(target=submit, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if o > 0]
    assert len(outcomes) == 8 and len(won) == 1, outcomes
    with prov.ctx.db.reader() as s:
        state = witnessed_state(s, NATIONAL)
    assert state is not None and state.size == won[0]


def test_bad_signature_is_403(pair: dict[str, Any]) -> None:
    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    nat.append(5)
    size, note = nat.latest()
    cp = Checkpoint.parse(parse_note(note).text)
    # Same origin and key name, another key: an unknown key, so no trusted signature at all.
    impostor = sign_checkpoint(cp, NoteSigner.generate(NATIONAL))
    # The trusted key's line with a flipped signature byte.
    ok = parse_note(note).sigs[0]
    bad_sig = bytes([ok.sig[0] ^ 1]) + ok.sig[1:]
    tampered = cp.to_text() + "\n" + type(ok)(ok.name, ok.key_id, bad_sig).to_line()
    # A checkpoint whose text was changed after signing.
    moved = note.replace(f"\n{size}\n", f"\n{size + 1}\n", 1)
    for body in (impostor, tampered, moved):
        r = _post(prov, format_add_checkpoint(0, [], body))
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "bad-signature"
    with prov.ctx.db.reader() as s:
        assert witnessed_state(s, NATIONAL) is None


def test_unknown_log_is_404(pair: dict[str, Any]) -> None:
    prov: Deployment = pair["province"]
    stranger = NoteSigner.generate("stranger.example/log")
    note = sign_checkpoint(Checkpoint("stranger.example/log", 1, merkle.leaf_hash(b"x")), stranger)
    r = _post(prov, format_add_checkpoint(0, [], note))
    assert r.status_code == 404 and r.json()["code"] == "unknown-log"


def test_malformed_requests_are_400(pair: dict[str, Any]) -> None:
    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    nat.append(4)
    size, note = nat.latest()
    h = merkle.leaf_hash(b"h")
    bodies = [
        format_add_checkpoint(size + 1, [], note),  # old above the checkpoint size
        note.encode(),  # no old line
        b"old 01\n\n" + note.encode(),  # leading zero
        format_add_checkpoint(0, [h], note).replace(b"=\n", b"\n", 1),  # non-canonical base64
        ("old 0\n" + "AAAA\n" + "\n" + note).encode(),  # a 3-byte "hash"
        (
            "old 0\n"
            + "".join("ZDvXJFlFwbU7NHUVsSiTZ7/Hv1XpGZ3uc5b8UYxm6Ok=\n" for _ in range(64))
            + "\n"
            + note
        ).encode(),
        b"old 0\n\nnot a note\n",
        b"old 0\n\n\xff\xfe",
    ]
    for body in bodies:
        r = _post(prov, body)
        assert r.status_code == 400, (body[:60], r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    with prov.ctx.db.reader() as s:
        assert witnessed_state(s, NATIONAL) is None


def test_non_empty_proof_from_zero_is_422(pair: dict[str, Any]) -> None:
    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    nat.append(4)
    _size, note = nat.latest()
    r = _post(prov, format_add_checkpoint(0, [merkle.leaf_hash(b"h")], note))
    assert r.status_code == 422 and r.json()["code"] == "bad-consistency-proof"


def test_bad_cosignature_from_a_witness_is_not_stored(pair: dict[str, Any]) -> None:
    """A witness answering 200 with a line that does not verify is refused by the log."""
    import httpx

    nat: Deployment = pair["national"]
    prov: Deployment = pair["province"]
    nat.append(3)

    def tamper(request: httpx.Request) -> httpx.Response:
        r = prov.http.post(request.url.path, content=request.content)
        line = r.text
        flipped = line[:-3] + ("A" if line[-3] != "A" else "B") + line[-2:]
        return httpx.Response(r.status_code, content=flipped.encode())

    with httpx.Client(transport=httpx.MockTransport(tamper)) as http:
        (res,) = request_cosignatures(nat.ctx, http=http)
    assert res.outcome == "refused" and "valid cosignature" in res.detail, res
    r = nat.http.get("/log/checkpoint")
    assert "sichuan.example/witness" not in r.text


# --------------------------------------------------------------------------------------------
# Pure protocol pieces and the published vectors
# --------------------------------------------------------------------------------------------

SUNLIGHT = VECTORS / "tlog-tiles-sunlight"
ROME = "000de184301123b9278c086a7d9f68c9577e83872224c197058fd90784ea9706"
MILAN = "88ad7a28caeb0b2aa890fdf0304c2fcaf59fca2ee140134ff8c1300bac493482"
VECTOR_CASES = [
    (f"witness/{ROME}/checkpoint", "witness/witness.v0.json"),
    (f"witness2/{MILAN}/checkpoint", "witness2/witness.v0.json"),
    (f"witness/mirror/{ROME}/checkpoint", "witness/mirror/mirror.v0.json"),
]


@pytest.mark.parametrize(("cp_path", "key_path"), VECTOR_CASES)
def test_sunlight_cosignatures_are_accepted_as_witness_responses(
    cp_path: str, key_path: str
) -> None:
    """The sunlight witnesses' cosignature lines, read as add-checkpoint responses, verify."""
    full = (SUNLIGHT / cp_path).read_text("utf-8")
    witness = CosignatureVerifier.from_vkey(
        json.loads((SUNLIGHT / key_path).read_text("utf-8"))["verifier_keys"][0]
    )
    parsed = parse_note(full)
    mine = [s for s in parsed.sigs if (s.name, s.key_id) == (witness.name, witness.key_id)]
    others = [s for s in parsed.sigs if s not in mine]
    assert len(mine) == 1
    # witness2's file holds the cosignature alone: stand in a log signature of our own there.
    note = (
        parsed.text + "\n" + "".join(s.to_line() for s in others)
        if others
        else sign_note(parsed.text, NoteSigner.generate("stand-in.example/log"))
    )
    response = mine[0].to_line()
    ((sig, ts),) = accept_cosignatures(note, response, witness)
    assert sig == mine[0] and ts == 1767139200
    # One changed character of the line and it is refused.
    b64 = response.split(" ")[-1]
    flipped = response.replace(b64, b64[:10] + ("A" if b64[10] != "A" else "B") + b64[11:])
    with pytest.raises(SignatureError):
        accept_cosignatures(note, flipped, witness)
    # A response without a line of the witness asked is refused too.
    with pytest.raises(SignatureError):
        accept_cosignatures(note, parse_note(note).sigs[0].to_line(), witness)


def test_spec_example_request_parses() -> None:
    """The request body example of c2sp.org/tlog-witness."""
    body = (
        "old 20852014\n"
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
        "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
        "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
        "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
        "\n"
        "example.com/behind-the-sofa\n"
        "20852163\n"
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        "\n"
        "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7"
        "u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
        "\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wk"
        "s+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
    ).encode()
    req = parse_add_checkpoint(body)
    assert req.old == 20852014 and len(req.proof) == 4
    assert req.checkpoint.origin == "example.com/behind-the-sofa"
    assert req.checkpoint.size == 20852163
    assert format_add_checkpoint(req.old, req.proof, req.note) == body


def test_check_extends_rules() -> None:
    tree = merkle.MemoryTree()
    for i in range(9):
        tree.append(b"%d" % i)
    root5, root9 = tree.root(5), tree.root(9)
    proof = tree.consistency_proof(5, 9)
    signer = NoteSigner.generate("o.example/log")

    def req(old: int, size: int, root: bytes, pf: list[bytes]) -> AddCheckpoint:
        cp = Checkpoint("o.example/log", size, root)
        return AddCheckpoint(old, tuple(pf), sign_checkpoint(cp, signer), cp)

    check_extends(req(5, 9, root9, proof), 5, root5)
    check_extends(req(0, 9, root9, []), 0, merkle.EMPTY_ROOT)
    check_extends(req(9, 9, root9, []), 9, root9)  # a re-cosign of the same tree
    cases = [
        (req(4, 9, root9, proof), 5, root5, 409, "old-size-mismatch"),
        (req(9, 9, root5, []), 9, root9, 409, "fork"),
        (req(5, 9, root5, proof), 5, root5, 422, "bad-consistency-proof"),
        (req(5, 9, root9, proof[:-1]), 5, root5, 422, "bad-consistency-proof"),
        (req(9, 9, root9, proof[:1]), 9, root9, 422, "bad-consistency-proof"),
        (req(0, 9, root9, proof), 0, merkle.EMPTY_ROOT, 422, "bad-consistency-proof"),
    ]
    for r, size, root, status, code in cases:
        with pytest.raises(WitnessError) as exc:
            check_extends(r, size, root)
        assert (exc.value.status, exc.value.code) == (status, code), r
        if status == 409:
            assert exc.value.known_size == size


@pytest.mark.parametrize("body", [b"40", b"040\n", b"-1\n", b"4 0\n", b"\xff\n"])
def test_bad_size_answers_are_refused(body: bytes) -> None:
    with pytest.raises(FormatError):
        parse_size_body(body)


def test_settings_take_witness_lists_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log_a = NoteSigner.generate("a.example/log").verifier().to_vkey()
    log_b = NoteSigner.generate("b.example/log").verifier().to_vkey()
    wit = load_or_create_witness_signer(_settings(tmp_path, "", "w.example/log")).verifier()
    monkeypatch.setenv("CELEDGER_WITNESS_LOGS", f"{log_a}; b.example/log {log_b}")
    monkeypatch.setenv("CELEDGER_WITNESSES", f"{wit.to_vkey()} https://w.example/witness/")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.witness_logs == [log_a, f"b.example/log {log_b}"]
    assert s.witnesses == [f"{wit.to_vkey()} https://w.example/witness/"]
    monkeypatch.setenv("CELEDGER_WITNESSES", json.dumps([f"{wit.to_vkey()} https://w.example"]))
    assert len(Settings(_env_file=None).witnesses) == 1  # type: ignore[call-arg]
    for bad in (log_a + "x", f"{wit.to_vkey()}", f"{log_a} ftp://x"):
        monkeypatch.setenv("CELEDGER_WITNESSES", bad)
        with pytest.raises(ValidationError):
            Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.delenv("CELEDGER_WITNESSES")
    monkeypatch.setenv("CELEDGER_WITNESS_LOGS", wit.to_vkey())  # a cosigner key is no log key
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_cli_witness_key_and_unreachable_witness(
    settings: Settings, ctx: Context, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("CELEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CELEDGER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CELEDGER_ORIGIN", settings.origin)
    assert main(["witness-sync"]) == 2  # no witnesses configured
    assert main(["keys", "witness"]) == 0
    vkey = capsys.readouterr().out.strip().splitlines()[-1].split()[-1]
    assert vkey == load_or_create_witness_signer(settings).verifier().to_vkey()
    with ctx.db.writer() as s:
        ctx.log.append(s, [("policy", b'{"v":1}')])
    # Nothing listens on the discard port: the witness is unreachable (exit 3), and it is noted.
    monkeypatch.setenv("CELEDGER_WITNESSES", f"{vkey} http://127.0.0.1:9/witness")
    assert main(["witness-sync"]) == 3
    assert "unreachable" in capsys.readouterr().out
    with ctx.db.reader() as s:
        size, error = witness_state(s, f"{vkey.split('+')[0]}+{vkey.split('+')[1]}")
    assert size == 0 and error is not None and "127.0.0.1:9" in error
