#!/usr/bin/python3
"""Write tests/vectors/v2.json: the known-answer values of protocol version
2, made with the independent reference secmsg2.py (written from
man/secmsg-protocol.7 alone).

    /usr/bin/python3 tests/vectors/ref/make_v2.py

The output is byte-stable: fixed inputs, Ed25519 (deterministic), no
randomness. The identities, certificates and handshake inputs are those of
handshake.json and e2e.json (read from there); every new private value is
SHA-256("secmsg/2 vectors: " || label). See README.md for the layout.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import secmsg2 as s  # noqa: E402

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
VEC = os.path.join(TOP, "tests", "vectors")
HS1 = json.load(open(os.path.join(VEC, "handshake.json")))
E2E1 = json.load(open(os.path.join(VEC, "e2e.json")))


def fixed(label):
    return s.sha256(b"secmsg/2 vectors: " + label.encode())


def h(b):
    return b.hex()


def inp(j, k):
    return bytes.fromhex(j["inputs"][k])

# ---- handshake: a version 2 ClientHello and its ServerHello ----


def handshake():
    i = HS1["inputs"]
    user = i["username"]
    user_key = s.Ed25519Key(inp(HS1, "user_ed25519_seed"))
    server_key = s.Ed25519Key(inp(HS1, "server_ed25519_seed"))
    c_priv = inp(HS1, "client_ephemeral_private")
    s_priv = inp(HS1, "server_ephemeral_private")
    c_nonce, s_nonce = inp(HS1, "client_nonce"), inp(HS1, "server_nonce")
    cert = inp(HS1, "server_cert")
    version = s.choose_version(2, 2)
    ch = s.client_hello(2, user, c_nonce, s.x25519_pub(c_priv))
    sh_star = s.server_hello_star(version, s_nonce, s.x25519_pub(s_priv), [cert])
    ssi = s.server_signature_input(ch, sh_star)
    sh = sh_star + s.bytes16(server_key.sign(ssi))
    csi = s.client_signature_input(ch, sh)
    ca = s.client_auth(user_key.sign(csi))
    z = s.x25519_dh(c_priv, s.x25519_pub(s_priv))
    assert z == s.x25519_dh(s_priv, s.x25519_pub(c_priv))
    prk, c2s, s2c = s.key_schedule(ch, sh, ca, z)
    out = {
        "note": "inputs are handshake.json's; only the version differs",
        "client_version": 2, "server_highest": 2, "chosen": version,
        "also_chosen": {"client 1, server 2": s.choose_version(1, 2),
                        "client 2, server 1": s.choose_version(2, 1),
                        "client 0": s.choose_version(0, 2),
                        "client 3": s.choose_version(3, 2)},
        "client_hello": h(ch), "server_hello_star": h(sh_star),
        "server_hello": h(sh), "client_auth": h(ca),
        "frames": {"client_hello": h(s.u32(len(ch)) + ch),
                   "server_hello": h(s.u32(len(sh)) + sh),
                   "client_auth": h(s.u32(len(ca)) + ca)},
        "h_ch_shstar": h(s.sha256(ch, sh_star)), "h_ch_sh": h(s.sha256(ch, sh)),
        "h_ch_sh_ca": h(s.sha256(ch, sh, ca)),
        "server_signature_input": h(ssi), "client_signature_input": h(csi),
        "z": h(z), "prk": h(prk),
        "c2s": {k: h(v) for k, v in s.traffic(c2s).items()},
        "s2c": {k: h(v) for k, v in s.traffic(s2c).items()},
    }
    # The first records of a version 2 session, sealed.
    e2e = bytes(range(56))
    recs = {
        "s2c": [("LIST reply", s.rec_list_reply(1, ["bob", "carol"])),
                ("END held: carol ended it while alice was offline",
                 s.rec_end_s2c("carol", 1)),
                ("CONVERSATIONS reply", s.rec_conversations_s2c(
                    1, [("bob", 1767225600, 1)]))],
        "c2s": [("CONVERSATIONS", s.rec_conversations_c2s()),
                ("MESSAGE to bob, ref 1", s.rec_message_c2s("bob", 1, e2e))],
    }
    out["records"] = {}
    for d, secret in (("s2c", s2c), ("c2s", c2s)):
        lst = []
        for seq, (what, pt) in enumerate(recs[d]):
            nonce, hdr, frame = s.seal_record(secret, seq, pt)
            lst.append({"what": what, "seq": seq, "plaintext": h(pt),
                        "nonce": h(nonce), "aad": h(hdr), "frame": h(frame)})
        out["records"][d] = lst
    return out

# ---- records of version 2 (plaintexts: opcode || payload) ----


def records():
    e2e = bytes.fromhex("a0" * 60)
    c2s = [
        ("message", "MESSAGE(peer bob, ref 7, e2e 60 bytes)",
         s.rec_message_c2s("bob", 7, e2e)),
        ("message_max_ref", "MESSAGE(peer bob, ref 2^32-1, empty e2e)",
         s.rec_message_c2s("bob", 0xFFFFFFFF, b"")),
        ("end_empty", "END(peer bob, empty e2e)", s.rec_end_c2s("bob")),
        ("end_e2e", "END(peer bob, e2e 60 bytes)", s.rec_end_c2s("bob", e2e)),
        ("refuse_7", "REFUSE(peer bob, reason 7)", s.rec_refuse_c2s("bob", 7)),
        ("conversations", "CONVERSATIONS", s.rec_conversations_c2s()),
        ("ack", "ACK(seq 3)", s.rec_ack(3)),
        ("ack_max", "ACK(seq 2^64-1)", s.rec_ack(2**64 - 1)),
    ]
    s2c = [
        ("message", "MESSAGE(peer alice, e2e 60 bytes)",
         s.rec_message_s2c("alice", e2e)),
        ("end_1_e2e", "END(peer alice, reason 1, e2e 60 bytes)",
         s.rec_end_s2c("alice", 1, e2e)),
        ("end_2", "END(peer alice, reason 2, empty e2e)", s.rec_end_s2c("alice", 2)),
        ("end_5", "END(peer alice, reason 5, empty e2e)", s.rec_end_s2c("alice", 5)),
        ("end_6", "END(peer alice, reason 6, empty e2e)", s.rec_end_s2c("alice", 6)),
        ("error_6", "ERROR(code 6, op 5, ref 42, peer bob, \"peer offline\")",
         s.rec_error(6, 5, 42, "bob", b"peer offline")),
        ("error_3", "ERROR(code 3, op 5, ref 9, peer bob, \"rate limit reached\")",
         s.rec_error(3, 5, 9, "bob", b"rate limit reached")),
        ("error_1_none", "ERROR(code 1, op 5, ref 0, no peer, \"malformed request\")",
         s.rec_error(1, 5, 0, None, b"malformed request")),
        ("error_4", "ERROR(code 4, op 0x63, ref 0, no peer, \"unknown opcode\")",
         s.rec_error(4, 0x63, 0, None, b"unknown opcode")),
        ("conversations", "CONVERSATIONS(last 1: bob since 1767225600 online, "
         "carol since 1767312000 offline)",
         s.rec_conversations_s2c(1, [("bob", 1767225600, 1),
                                     ("carol", 1767312000, 0)])),
        ("conversations_part", "CONVERSATIONS(last 0: dave since 1, flags 0)",
         s.rec_conversations_s2c(0, [("dave", 1, 0)])),
        ("conversations_none", "CONVERSATIONS(last 1, count 0)",
         s.rec_conversations_s2c(1, [])),
        ("presence_on", "PRESENCE(peer bob, online 1)", s.rec_presence("bob", 1)),
        ("presence_off", "PRESENCE(peer bob, online 0)", s.rec_presence("bob", 0)),
        ("stored", "STORED(peer bob, ref 7)", s.rec_stored("bob", 7)),
        ("queued", "QUEUED(peer alice, seq 3, at 1767225600, e2e 60 bytes)",
         s.rec_queued("alice", 3, 1767225600, e2e)),
        ("error_7", "ERROR(code 7, op 5, ref 8, peer bob, \"queue of bob full\")",
         s.rec_error(7, 5, 8, "bob", b"queue of bob full")),
        ("error_8", "ERROR(code 8, op 5, ref 9, peer bob, \"store full\")",
         s.rec_error(8, 5, 9, "bob", b"store full")),
        ("error_9", "ERROR(code 9, op 5, ref 10, peer bob, \"not stored\")",
         s.rec_error(9, 5, 10, "bob", b"not stored")),
        ("expired", "EXPIRED(peer bob, ref 11, at 1767225600)",
         s.rec_expired("bob", 11, 1767225600)),
    ] + first_contact()
    return {d: {k: {"what": w, "plaintext": h(pt)} for k, w, pt in lst}
            for d, lst in (("c2s", c2s), ("s2c", s2c))}

def first_contact():
    """WAITING and KEPT: alice (requester) and bob (target); the KEPT
    ACCEPT and CONFIRM carry the peer's SPKI of e2e.json and flags 1."""
    nonce, share = fixed("nonce_a"), s.x25519_pub(fixed("alice exchange"))
    sig = fixed("kept sig 1") + fixed("kept sig 2")
    key_a = s.Ed25519Key(inp(E2E1, "alice_ed25519_seed")).spki()
    key_b = s.Ed25519Key(inp(E2E1, "bob_ed25519_seed")).spki()
    at = 1767225600
    return [
        ("waiting_rtt", "WAITING(peer bob, op 2 RTT)",
         s.rec_waiting("bob", 2)),
        ("waiting_accept", "WAITING(peer alice, op 3 ACCEPT)",
         s.rec_waiting("alice", 3)),
        ("kept_rtt", "KEPT(at 1767225600, RTT(peer alice, nonce_a, share_a))",
         s.rec_kept(at, s.rec_rtt("alice", nonce, share))),
        ("kept_accept", "KEPT(at 1767225660, ACCEPT(peer bob, nonce, share, "
         "sig 64 bytes, peer_key bob's SPKI, flags 1))",
         s.rec_kept(at + 60, s.rec_accept_s2c("bob", nonce, share, sig,
                                              key_b, 1))),
        ("kept_confirm", "KEPT(at 1767225720, CONFIRM(peer alice, sig 64 "
         "bytes, peer_key alice's SPKI, flags 1))",
         s.rec_kept(at + 120, s.rec_confirm_s2c("alice", sig, key_a, 1))),
        ("kept_refuse_6", "KEPT(at 1767225600, REFUSE(peer bob, reason 6))",
         s.rec_kept(at, s.rec_refuse_s2c("bob", 6))),
        ("kept_end_4", "KEPT(at 1767225600, END(peer alice, reason 4, "
         "empty e2e))",
         s.rec_kept(at, s.rec_end_s2c("alice", 4))),
    ]

# ---- the exchange and a conversation's ratchet ----


class Run:
    def __init__(self):
        self.ka = s.Ed25519Key(inp(E2E1, "alice_ed25519_seed"))
        self.kb = s.Ed25519Key(inp(E2E1, "bob_ed25519_seed"))
        self.fresh = {"alice": [], "bob": []}
        self.sealed = {}
        self.steps = []

    def draw(self, who):
        p = fixed("%s ratchet %d" % (who, len(self.fresh[who])))
        self.fresh[who].append(p)
        return p


def exchange(run):
    a_priv, b_priv = fixed("alice exchange"), fixed("bob exchange")
    nonce_a, nonce_b = fixed("nonce_a"), fixed("nonce_b")
    share_a, share_b = s.x25519_pub(a_priv), s.x25519_pub(b_priv)
    t = s.exchange_t("alice", "bob", nonce_a, share_a, nonce_b, share_b)
    asi = s.accept_signature_input(t)
    sig_b = run.kb.sign(asi)
    csi = s.confirm_signature_input(t, sig_b)
    sig_a = run.ka.sign(csi)
    z = s.x25519_dh(a_priv, share_b)
    assert z == s.x25519_dh(b_priv, share_a)
    salt, sk, rk0, ad = s.root(t, sig_b, sig_a, z)
    ra = s.Ratchet.alice(rk0, ad, share_b, run.draw("alice"))
    rb = s.Ratchet.bob(rk0, ad, b_priv)
    run.a = s.Conversation(ra, True)
    run.b = s.Conversation(rb, False)
    return {
        "inputs": {
            "alice_ed25519_seed": h(run.ka.seed), "alice_spki": h(run.ka.spki()),
            "bob_ed25519_seed": h(run.kb.seed), "bob_spki": h(run.kb.spki()),
            "alice_exchange_private": h(a_priv), "share_a": h(share_a),
            "nonce_a": h(nonce_a),
            "bob_exchange_private": h(b_priv), "share_b": h(share_b),
            "nonce_b": h(nonce_b),
        },
        "records": {
            "rtt_c2s": h(s.rec_rtt("bob", nonce_a, share_a)),
            "rtt_s2c": h(s.rec_rtt("alice", nonce_a, share_a)),
            "accept_c2s": h(s.rec_accept_c2s("alice", nonce_b, share_b, sig_b)),
            "accept_s2c": h(s.rec_accept_s2c("bob", nonce_b, share_b, sig_b,
                                             run.kb.spki(), 1)),
            "confirm_c2s": h(s.rec_confirm_c2s("bob", sig_a)),
            "confirm_s2c": h(s.rec_confirm_s2c("alice", sig_a, run.ka.spki(), 1)),
        },
        "T": h(t), "accept_signature_input": h(asi), "sig_b": h(sig_b),
        "confirm_signature_input": h(csi), "sig_a": h(sig_a),
        "z": h(z), "sk_salt": h(salt), "sk": h(sk), "rk0": h(rk0), "ad": h(ad),
        "alice_initial": {"DHs_private": h(ra.dhs_priv), "RK": h(ra.rk),
                          "CKs": h(ra.cks)},
    }


def state_of(c):
    r = c.r
    sk = [[h(dh), n, h(mk)] for dh, n, mk in r.skipped]
    out = {"RK": h(r.rk), "CKs": h(r.cks) if r.cks else None,
           "CKr": h(r.ckr) if r.ckr else None, "DHs_public": h(r.dhs_pub),
           "DHr": h(r.dhr) if r.dhr else None, "Ns": r.ns, "Nr": r.nr,
           "PN": r.pn, "hello_done": c.hello_done,
           "next_text_id": c.next_text_id, "last_rx_text_id": c.last_rx_text_id,
           "skipped_count": len(sk)}
    if len(sk) <= 8:
        out["skipped"] = sk
    else:
        out["skipped_first"], out["skipped_last"] = sk[0], sk[-1]
    return out


def seal(run, sender, label, kind, text=None, tid=None, record=True):
    c = run.a if sender == "alice" else run.b
    if kind == s.HELLO:
        e2e, info, pt = c.seal_hello()
    elif kind == s.TEXT:
        e2e, info, pt = c.seal_text(text)
    elif kind == s.RECEIPT:
        e2e, info, pt = c.seal_receipt(tid)
    else:
        e2e, info, pt = c.seal_end()
    run.sealed[label] = (sender, e2e)
    if not record:
        return e2e
    hd = info["header"]
    st = {"op": "seal", "sender": sender, "label": label, "kind": kind,
          "plaintext": h(pt),
          "header": {"dh": h(hd[:32]), "pn": int.from_bytes(hd[32:36], "big"),
                     "n": int.from_bytes(hd[36:40], "big"), "bytes": h(hd)},
          "chain_key": h(info["chain_key"]), "message_key": h(info["message_key"]),
          "aes_key": h(info["aes_key"]), "aes_nonce": h(info["aes_nonce"]),
          "aad": h(info["aad"]), "e2e": h(e2e)}
    peer, me = ("bob", "alice") if sender == "alice" else ("alice", "bob")
    if kind == s.END:
        st["end_c2s"] = h(s.rec_end_c2s(peer, e2e))
        st["end_s2c"] = h(s.rec_end_s2c(me, 1, e2e))
    else:
        ref = c.take_ref()
        st["ref"] = ref
        st["message_c2s"] = h(s.rec_message_c2s(peer, ref, e2e))
        st["message_s2c"] = h(s.rec_message_s2c(me, e2e))
    run.steps.append(st)
    return e2e


def seal_many(run, sender, label, count, fmt, deliver):
    """count TEXTs sealed back to back; only those in deliver are listed."""
    c = run.a if sender == "alice" else run.b
    first_id, first_n = c.next_text_id, c.r.ns
    listed = {}
    for i in range(count):
        lab = "%s.%d" % (label, i)
        e2e = seal(run, sender, lab, s.TEXT, (fmt % i).encode(), record=False)
        c.take_ref()
        if lab in deliver:
            listed[lab] = h(e2e)
    run.steps.append({"op": "seal_many", "sender": sender, "label": label,
                      "count": count, "text_format": fmt,
                      "first_text_id": first_id, "first_n": first_n,
                      "dh": h(c.r.dhs_pub), "e2e": listed})


def deliver(run, label, expect, in_end_record=False):
    sender, e2e = run.sealed[label]
    to = "bob" if sender == "alice" else "alice"
    c = run.b if to == "bob" else run.a
    before = state_of(c)
    st = {"op": "deliver", "to": to, "label": label}
    if in_end_record:
        st["in_end_record"] = True
    try:
        pt, s_, notes = c.r.decrypt(e2e)
        c._rules(pt, in_end_record)
        fresh = run.draw(to) if notes["dh_step"] else None
        pt, ev, notes = c.open(e2e, fresh, in_end_record)
        st.update({"accepted": True, "refused": None, "plaintext": h(pt),
                   "kind": ev["kind"], "from_skipped": notes["from_skipped"],
                   "dh_step": notes["dh_step"],
                   "new_ratchet_private": h(fresh) if fresh else None,
                   "kept_count": len(notes["kept"])})
        if ev["kind"] in (s.TEXT, s.RECEIPT):
            st["id"] = ev["id"]
        assert expect is None, (label, expect)
    except s.Refused as e:
        st.update({"accepted": False, "refused": str(e)})
        assert state_of(c) == before
        assert str(e) == expect, (label, str(e), expect)
    st["state_after"] = state_of(c)
    run.steps.append(st)


def conversation(run):
    seal(run, "alice", "m0", s.HELLO)
    seal(run, "alice", "m1", s.TEXT, b"one")
    seal(run, "alice", "m2", s.TEXT, b"two")
    seal(run, "alice", "m3", s.TEXT, b"three")
    deliver(run, "m1", "HELLO first")          # nothing is kept
    deliver(run, "m0", None)                   # bob's first DH step
    deliver(run, "m3", None)                   # keeps n=1, n=2
    deliver(run, "m1", None)                   # from the kept keys
    deliver(run, "m1", "duplicate or too old")
    deliver(run, "m2", None)
    seal(run, "bob", "b1", s.TEXT, b"b-one")
    seal(run, "bob", "b2", s.RECEIPT, tid=3)
    deliver(run, "b2", None)                   # alice steps, keeps bob's n=0
    deliver(run, "b1", None)
    seal(run, "alice", "m4", s.TEXT, b"four")
    seal(run, "alice", "m5", s.TEXT, b"five")
    seal(run, "alice", "m6", s.TEXT, b"six")   # held back: "lost"
    deliver(run, "m4", None)
    deliver(run, "m5", None)
    seal(run, "bob", "b3", s.TEXT, b"b-two")
    deliver(run, "b3", None)
    seal(run, "alice", "m7", s.TEXT, b"seven")
    deliver(run, "m7", None)                   # keeps m6's key across the step
    run.snapshot = copy_conv(run.b)
    deliver(run, "m6", None)                   # late, from the old chain
    seal_many(run, "alice", "bulk", 1003, "bulk %d",
              {"bulk.1000", "bulk.1001", "bulk.1002", "bulk.1", "bulk.2",
               "bulk.4"})
    # bulk.i is at n = i + 1 on alice's third chain; bob's Nr there is 1.
    deliver(run, "bulk.1001", "too far ahead")  # n - Nr = 1001
    deliver(run, "bulk.1000", None)            # n - Nr = 1000: keeps 1000
    deliver(run, "bulk.1001", None)
    deliver(run, "bulk.4", None)
    seal(run, "bob", "b4", s.TEXT, b"b-three")
    deliver(run, "b4", None)
    seal_many(run, "alice", "bulk2", 1004, "bulk2 %d",
              {"bulk2.1000", "bulk2.1003"})
    # bulk2.i is at n = i on alice's fourth chain, whose pn is 1004: the
    # step keeps bulk.1002's key (n = 1003 of the third chain).
    deliver(run, "bulk2.1000", None)           # keeps 1 + 1000: 2000 kept
    deliver(run, "bulk2.1003", None)           # 2002: the two oldest dropped
    deliver(run, "bulk.1", "out of order")     # n = 2: its key was dropped
    deliver(run, "bulk.2", None)               # n = 3: still kept
    deliver(run, "bulk.1002", None)            # kept at the step
    seal(run, "alice", "end", s.END)
    deliver(run, "end", "END outside an END record")
    deliver(run, "end", None, in_end_record=True)


def copy_conv(c):
    import copy
    return copy.deepcopy(c)

# ---- the client state file ----


def state(run):
    conv = run.snapshot
    pkcs8 = run.kb.pkcs8()
    salt, nonce = fixed("state salt"), fixed("state nonce")[:12]
    fpr = s.sha256(run.ka.spki())
    since = 1767225600
    pt = s.state_plaintext("bob", [("alice", since, conv, fpr)])
    hdr, prk, key, data = s.state_file(pkcs8, salt, nonce, pt)
    assert s.state_open(pkcs8, data) == pt
    # first contact: bob asked carol (open); alice asked bob, he accepted
    a_priv, b_priv = fixed("alice exchange"), fixed("bob exchange")
    nonce_a, nonce_b = fixed("nonce_a"), fixed("nonce_b")
    sig_b = fixed("kept sig 1") + fixed("kept sig 2")
    reqs = s.state_plaintext_requests("bob", [
        s.request_value("carol", 1767225600, True, nonce_b,
                        s.x25519_pub(b_priv), b_priv),
        s.request_value("alice", 1767225660, False, nonce_a,
                        s.x25519_pub(a_priv), b_priv,
                        (nonce_b, s.x25519_pub(b_priv), sig_b)),
    ])
    empty = s.state_plaintext("bob", [])
    ehdr, _, ekey, edata = s.state_file(pkcs8, fixed("empty salt"),
                                        fixed("empty nonce")[:12], empty)
    return {
        "note": "bob's state right after m7 (one kept key: m6's)",
        "user": "bob", "pkcs8": h(pkcs8), "salt": h(salt), "prk": h(prk),
        "key": h(key), "nonce": h(nonce), "header": h(hdr),
        "conversation": {"peer": "alice", "since": since,
                         "peer_fingerprint": h(fpr),
                         "next_ref": conv.next_ref,
                         "DHs_private": h(conv.r.dhs_priv),
                         "state": state_of(conv)},
        "plaintext": h(pt), "file": h(data),
        "requests_plaintext": h(reqs),
        "empty": {"salt": h(fixed("empty salt")),
                  "nonce": h(fixed("empty nonce")[:12]), "key": h(ekey),
                  "plaintext": h(empty), "file": h(edata)},
    }


# ---- a check on the reference: version 1's vectors, made by another
# reference from PROTOCOL.md (/work/shared/vectors/README.md), come out
# byte for byte: the same primitives, labels, layouts and ratchet ----


def check_version1():
    hs, e = HS1, E2E1
    user = s.Ed25519Key(inp(hs, "user_ed25519_seed"))
    server = s.Ed25519Key(inp(hs, "server_ed25519_seed"))
    c_priv = inp(hs, "client_ephemeral_private")
    s_priv = inp(hs, "server_ephemeral_private")
    ch = s.client_hello(1, hs["inputs"]["username"], inp(hs, "client_nonce"),
                        s.x25519_pub(c_priv))
    sh_star = s.server_hello_star(1, inp(hs, "server_nonce"),
                                  s.x25519_pub(s_priv), [inp(hs, "server_cert")])
    sh = sh_star + s.bytes16(server.sign(s.server_signature_input(ch, sh_star)))
    ca = s.client_auth(user.sign(s.client_signature_input(ch, sh)))
    assert (h(ch), h(sh), h(ca)) == (hs["client_hello"], hs["server_hello"],
                                     hs["client_auth"])
    _, c2s, s2c = s.key_schedule(ch, sh, ca, s.x25519_dh(c_priv, s.x25519_pub(s_priv)))
    for d, secret in (("c2s", c2s), ("s2c", s2c)):
        assert h(secret) == hs[d]["secret"]
        rec = hs["records"][d][0]
        frame = s.seal_record(secret, 0, bytes.fromhex(rec["plaintext"]))[2]
        assert h(frame) == rec["frame"]
    ka = s.Ed25519Key(inp(e, "alice_ed25519_seed"))
    kb = s.Ed25519Key(inp(e, "bob_ed25519_seed"))
    t = s.exchange_t("alice", "bob", inp(e, "nonce_a"), inp(e, "share_a"),
                     inp(e, "nonce_b"), inp(e, "share_b"))
    sig_b = kb.sign(s.accept_signature_input(t))
    sig_a = ka.sign(s.confirm_signature_input(t, sig_b))
    z = s.x25519_dh(inp(e, "alice_ephemeral_private"), inp(e, "share_b"))
    _, _, rk0, ad = s.root(t, sig_b, sig_a, z)
    assert (h(t), h(sig_b), h(sig_a), h(rk0), h(ad)) == (
        e["T"], e["sig_b"], e["sig_a"], e["rk0"], e["ad"])
    priv = e["inputs"]["ratchet_privates"]
    a = s.Conversation(s.Ratchet.alice(rk0, ad, inp(e, "share_b"),
                                       bytes.fromhex(priv["alice"][0])), True)
    b = s.Conversation(s.Ratchet.bob(rk0, ad, inp(e, "bob_ephemeral_private")),
                       False)
    for m in e["messages"]:
        snd, rcv = (a, b) if m["sender"] == "alice" else (b, a)
        e2e, _ = snd.r.encrypt(bytes.fromhex(m["plaintext"]))
        assert h(e2e) == m["e2e"], m["index"]
        snd.hello_done = True
        fresh = m["receiver_new_ratchet_private"]
        pt, _, notes = rcv.open(e2e, bytes.fromhex(fresh) if fresh else None)
        assert h(pt) == m["plaintext"] and notes["dh_step"] == m["receiver_dh_step"]


def safety_numbers():
    """Two made-up fingerprints (fixed values), both orders."""
    a = h(fixed("safety a"))
    b = h(fixed("safety b"))
    return [{"fingerprint_a": a, "fingerprint_b": b,
             "number": s.safety_number(a, b)},
            {"fingerprint_a": b, "fingerprint_b": a,
             "number": s.safety_number(b, a)}]


def main():
    check_version1()
    run = Run()
    ex = exchange(run)
    conversation(run)
    ex["steps"] = run.steps
    ex["fresh_privates"] = {k: [h(p) for p in v] for k, v in run.fresh.items()}
    out = {
        "description": "secmsg protocol version 2 known answers, made by "
                       "tests/vectors/ref/make_v2.py from secmsg-protocol(7) "
                       "alone; see tests/vectors/ref/README.md",
        "handshake": handshake(),
        "records": records(),
        "conversation": ex,
        "state": state(run),
        "safety_number": safety_numbers(),
    }
    path = os.path.join(VEC, "v2.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
