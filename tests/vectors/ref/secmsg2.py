"""secmsg2.py - an independent reference of secmsg-protocol(7), version 2.

Written from the man page alone (sections HANDSHAKE, RECORDS, END-TO-END
KEY EXCHANGE, CHAT MESSAGES, VERSION 2 and CLIENT STATE), with Debian's
python3-cryptography; it shares no code with proto/. Only what the
version 2 vectors need is here: the handshake bodies and key schedule,
record sealing, the records of version 2, the e2e exchange, the Double
Ratchet with skipped message keys and the rules of a conversation, and
the client state file.

Run with /usr/bin/python3 (Debian 12: python3-cryptography 38).
"""
import copy
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# ---- notation and primitives ----


def u8(v):
    return struct.pack(">B", v)


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def bytes16(b):
    assert len(b) <= 0xFFFF
    return u16(len(b)) + b


def valid_name(n):
    if not 1 <= len(n) <= 32:
        return False
    first = b"abcdefghijklmnopqrstuvwxyz0123456789"
    rest = first + b"._-"
    return n[0] in first and all(c in rest for c in n[1:])


def name(n):
    if isinstance(n, str):
        n = n.encode()
    assert valid_name(n), n
    return u8(len(n)) + n


def oname(n):
    """VERSION 2: u8 length 0..32; 0 is "none"."""
    if n is None:
        return u8(0)
    return name(n)


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def expand(prk, info, length):
    if isinstance(info, str):
        info = info.encode()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def x25519_pub(priv):
    k = x25519.X25519PrivateKey.from_private_bytes(priv)
    return k.public_key().public_bytes(serialization.Encoding.Raw,
                                       serialization.PublicFormat.Raw)


def x25519_dh(priv, pub):
    k = x25519.X25519PrivateKey.from_private_bytes(priv)
    z = k.exchange(x25519.X25519PublicKey.from_public_bytes(pub))
    if z == bytes(32):
        raise ValueError("all-zero X25519 result")
    return z


class Ed25519Key:
    def __init__(self, seed):
        self.seed = seed
        self.k = ed25519.Ed25519PrivateKey.from_private_bytes(seed)

    def sign(self, m):
        return self.k.sign(m)

    def spki(self):
        return self.k.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)

    def pkcs8(self):
        """CLIENT STATE: the unencrypted PKCS#8 PrivateKeyInfo, DER."""
        der = self.k.private_bytes(serialization.Encoding.DER,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
        assert der == bytes.fromhex("302e020100300506032b657004220420") + self.seed
        return der


def aead_seal(key, nonce, pt, aad):
    return AESGCM(key).encrypt(nonce, pt, aad)


def aead_open(key, nonce, ct, aad):
    return AESGCM(key).decrypt(nonce, ct, aad)

# ---- handshake (HANDSHAKE; VERSION 2, Negotiation) ----


def client_hello(version, user, nonce, share):
    return u8(0x01) + b"SMSG" + u8(version) + name(user) + nonce + share


def server_hello_star(version, nonce, share, certs):
    out = u8(0x02) + u8(version) + nonce + share + u8(len(certs))
    for c in certs:
        out += bytes16(c)
    return out


def server_signature_input(ch, sh_star):
    return b"secmsg/1 server signature" + b"\x00" + sha256(ch, sh_star)


def client_signature_input(ch, sh):
    return b"secmsg/1 client signature" + b"\x00" + sha256(ch, sh)


def client_auth(sig):
    return u8(0x03) + bytes16(sig)


def traffic(secret):
    return {
        "secret": secret,
        "key": expand(secret, "key", 32),
        "iv": expand(secret, "iv", 12),
        "next": expand(secret, "update", 32),
    }


def key_schedule(ch, sh, ca, z):
    prk = extract(sha256(ch, sh, ca), z)
    return prk, expand(prk, "secmsg/1 c2s", 32), expand(prk, "secmsg/1 s2c", 32)


def choose_version(client_version, server_highest):
    """The server's choice (VERSION 2, Negotiation): a server speaking 1
    and 2 takes the lower of the offer and 2 (a later client meets it at
    2); one speaking only 1 follows version 1 (only 1). Version 0: None,
    HandshakeError 1."""
    if client_version < 1 or (server_highest == 1 and client_version != 1):
        return None
    return min(client_version, server_highest)

# ---- records (RECORDS) ----


def seal_record(secret, seq, pt):
    t = traffic(secret)
    nonce = bytes(a ^ b for a, b in zip(t["iv"], bytes(4) + u64(seq)))
    hdr = u32(len(pt) + 16)
    return nonce, hdr, hdr + aead_seal(t["key"], nonce, pt, hdr)

# ---- the records of version 2 (VERSION 2, Records changed or added) ----

OP = {"QUIT": 0, "LIST": 1, "RTT": 2, "ACCEPT": 3, "REFUSE": 4, "MESSAGE": 5,
      "CONFIRM": 6, "END": 7, "ERROR": 8, "BYE": 9, "KEY_UPDATE": 10,
      "PING": 11, "PONG": 12, "CONVERSATIONS": 13, "PRESENCE": 14,
      "STORED": 15, "QUEUED": 16, "ACK": 17,
      "EXPIRED": 18, "WAITING": 19, "KEPT": 20}


def rec_list_reply(last, names):
    return u8(OP["LIST"]) + u8(last) + u16(len(names)) + b"".join(name(n) for n in names)


def rec_accept_c2s(peer, nonce, share, sig):
    return u8(OP["ACCEPT"]) + name(peer) + nonce + share + bytes16(sig)


def rec_accept_s2c(peer, nonce, share, sig, peer_key, flags):
    assert flags & ~1 == 0
    return rec_accept_c2s(peer, nonce, share, sig) + bytes16(peer_key) + u8(flags)


def rec_confirm_c2s(peer, sig):
    return u8(OP["CONFIRM"]) + name(peer) + bytes16(sig)


def rec_confirm_s2c(peer, sig, peer_key, flags):
    assert flags & ~1 == 0
    return rec_confirm_c2s(peer, sig) + bytes16(peer_key) + u8(flags)


def rec_rtt(peer, nonce, share):
    return u8(OP["RTT"]) + name(peer) + nonce + share


def rec_message_c2s(peer, ref, e2e):
    assert 1 <= ref <= 0xFFFFFFFF and len(e2e) <= 8192
    return u8(OP["MESSAGE"]) + name(peer) + u32(ref) + bytes16(e2e)


def rec_message_s2c(peer, e2e):
    assert len(e2e) <= 8192
    return u8(OP["MESSAGE"]) + name(peer) + bytes16(e2e)


def rec_end_c2s(peer, e2e=b""):
    assert len(e2e) <= 8192
    return u8(OP["END"]) + name(peer) + bytes16(e2e)


def rec_end_s2c(peer, reason, e2e=b""):
    assert 1 <= reason <= 6 and len(e2e) <= 8192
    return u8(OP["END"]) + name(peer) + u8(reason) + bytes16(e2e)


def rec_refuse_c2s(peer, reason):
    """REFUSE from a client: reason 1, or 7 (the peer's key refused)."""
    assert reason in (1, 7)
    return u8(OP["REFUSE"]) + name(peer) + u8(reason)


def rec_error(code, op, ref, peer, text):
    assert 1 <= code <= 9
    return u8(OP["ERROR"]) + u16(code) + u8(op) + u32(ref) + oname(peer) + bytes16(text)


def rec_conversations_c2s():
    return u8(OP["CONVERSATIONS"])


def rec_conversations_s2c(last, entries):
    assert last in (0, 1) and len(entries) <= 1000
    out = u8(OP["CONVERSATIONS"]) + u8(last) + u16(len(entries))
    for peer, since, flags in entries:
        assert flags & ~1 == 0
        out += name(peer) + u64(since) + u8(flags)
    return out


def rec_presence(peer, online):
    assert online in (0, 1)
    return u8(OP["PRESENCE"]) + name(peer) + u8(online)


# Issue 17: the store-and-forward queue (VERSION 2, Stored messages).

def rec_stored(peer, ref):
    assert 1 <= ref <= 0xFFFFFFFF
    return u8(OP["STORED"]) + name(peer) + u32(ref)


def rec_queued(peer, seq, at, e2e):
    assert 1 <= seq < 2**64 and 0 <= at < 2**64 and len(e2e) <= 8192
    return u8(OP["QUEUED"]) + name(peer) + u64(seq) + u64(at) + bytes16(e2e)


def rec_expired(peer, ref, at):
    assert 1 <= ref <= 0xFFFFFFFF and 0 <= at < 2**64
    return u8(OP["EXPIRED"]) + name(peer) + u32(ref) + u64(at)


# First contact with an offline user (VERSION 2, First contact).

def rec_waiting(peer, op):
    assert op in (OP["RTT"], OP["ACCEPT"])
    return u8(OP["WAITING"]) + name(peer) + u8(op)


def rec_kept(at, record):
    """record: a whole server-to-client record (opcode || payload)."""
    assert 0 <= at < 2**64 and record[0] in (
        OP["RTT"], OP["ACCEPT"], OP["REFUSE"], OP["CONFIRM"], OP["END"])
    return u8(OP["KEPT"]) + u64(at) + record


def rec_refuse_s2c(peer, reason):
    assert 1 <= reason <= 6
    return u8(OP["REFUSE"]) + name(peer) + u8(reason)


def rec_ack(seq):
    assert 1 <= seq < 2**64
    return u8(OP["ACK"]) + u64(seq)

# ---- the e2e exchange (END-TO-END KEY EXCHANGE) ----


def exchange_t(a, b, nonce_a, share_a, nonce_b, share_b):
    return (b"secmsg/1 e2e" + b"\x00" + name(a) + name(b) + nonce_a + share_a
            + nonce_b + share_b)


def accept_signature_input(t):
    return b"secmsg/1 e2e accept" + b"\x00" + sha256(t)


def confirm_signature_input(t, sig_b):
    return b"secmsg/1 e2e confirm" + b"\x00" + sha256(t, sig_b)


def root(t, sig_b, sig_a, z):
    salt = sha256(t, sig_b, sig_a)
    sk = extract(salt, z)
    return salt, sk, expand(sk, "secmsg/1 e2e root", 32), sha256(t)

# ---- the Double Ratchet (CHAT MESSAGES; VERSION 2, Chat messages in a
# conversation) ----

MAX_SKIP = 1000
MAX_KEPT = 2000
TEXT, RECEIPT, HELLO, END = 1, 2, 3, 4


def kdf_rk(rk, dh_out):
    okm = expand(extract(rk, dh_out), "secmsg/1 ratchet", 64)
    return okm[:32], okm[32:]


def kdf_ck(ck):
    return hmac.new(ck, b"\x01", hashlib.sha256).digest(), \
        hmac.new(ck, b"\x02", hashlib.sha256).digest()


def message_material(mk):
    km = expand(extract(bytes(32), mk), "secmsg/1 message", 44)
    return km[:32], km[32:]


def header(dh, pn, n):
    return dh + u32(pn) + u32(n)


class Refused(Exception):
    """A message the receiver refuses; its state is unchanged."""


class Ratchet:
    def __init__(self, ad):
        self.ad = ad
        self.rk = None
        self.cks = self.ckr = None
        self.dhs_priv = self.dhs_pub = None
        self.dhr = None
        self.ns = self.nr = self.pn = 0
        self.skipped = []  # [dh, n, mk], oldest first

    @classmethod
    def alice(cls, rk0, ad, share_b, fresh_priv):
        r = cls(ad)
        r.rk = rk0
        r.dhr = share_b
        r.dhs_priv, r.dhs_pub = fresh_priv, x25519_pub(fresh_priv)
        r.rk, r.cks = kdf_rk(r.rk, x25519_dh(r.dhs_priv, r.dhr))
        return r

    @classmethod
    def bob(cls, rk0, ad, exchange_priv):
        r = cls(ad)
        r.rk = rk0
        r.dhs_priv, r.dhs_pub = exchange_priv, x25519_pub(exchange_priv)
        return r

    def encrypt(self, pt):
        """Returns (e2e, info) and advances the sending chain."""
        assert self.cks is not None and self.ns < 0xFFFFFFFF
        h = header(self.dhs_pub, self.pn, self.ns)
        ck = self.cks
        mk, self.cks = kdf_ck(ck)
        key, nonce = message_material(mk)
        aad = self.ad + h
        e2e = h + aead_seal(key, nonce, pt, aad)
        info = {"chain_key": ck, "message_key": mk, "aes_key": key,
                "aes_nonce": nonce, "aad": aad, "header": h}
        self.ns += 1
        return e2e, info

    def _skip(self, until, kept):
        if self.ckr is None:
            return
        if until - self.nr > MAX_SKIP:
            raise Refused("too far ahead")
        while self.nr < until:
            mk, self.ckr = kdf_ck(self.ckr)
            kept.append([self.dhr, self.nr, mk])
            self.nr += 1

    def decrypt(self, e2e):
        """Decrypt on a copy: returns (plaintext, new state, notes); the
        caller commits the new state only if the plaintext is accepted.
        The fresh pair of a DH step is drawn by complete() after that."""
        if len(e2e) < 40 + 16:
            raise Refused("malformed")
        s = copy.deepcopy(self)
        dh = e2e[:32]
        pn = struct.unpack(">I", e2e[32:36])[0]
        n = struct.unpack(">I", e2e[36:40])[0]
        aad = s.ad + e2e[:40]
        notes = {"from_skipped": False, "dh_step": False, "kept": []}
        for i, (sdh, sn, smk) in enumerate(s.skipped):  # step 1
            if sdh == dh and sn == n:
                key, nonce = message_material(smk)
                try:
                    pt = aead_open(key, nonce, e2e[40:], aad)
                except Exception:
                    raise Refused("does not decrypt")
                del s.skipped[i]
                notes["from_skipped"] = True
                return pt, s, notes
        kept = []
        if s.dhr is not None and dh == s.dhr and s.ckr is not None:  # step 2
            if n < s.nr:
                raise Refused("duplicate or too old")
            s._skip(n, kept)
        else:  # step 3
            if s.ckr is not None:
                if pn < s.nr:
                    raise Refused("out of order")
                s._skip(pn, kept)
            elif pn != 0:
                raise Refused("out of order")
            s.pn = s.ns
            s.ns = s.nr = 0
            s.dhr = dh
            s.rk, s.ckr = kdf_rk(s.rk, x25519_dh(s.dhs_priv, s.dhr))
            if n > MAX_SKIP:
                raise Refused("too far ahead")
            s._skip(n, kept)
            notes["dh_step"] = True
        if n == 0xFFFFFFFF:
            raise Refused("counter exhausted")
        mk, s.ckr = kdf_ck(s.ckr)
        key, nonce = message_material(mk)
        try:
            pt = aead_open(key, nonce, e2e[40:], aad)
        except Exception:
            raise Refused("does not decrypt")
        s.nr = n + 1
        notes["kept"] = kept
        return pt, s, notes

    def complete(self, notes, fresh_priv):
        """Step 4: the accepted message's changes take effect."""
        self.skipped.extend(notes["kept"])
        while len(self.skipped) > MAX_KEPT:
            del self.skipped[0]
        if notes["dh_step"]:
            self.dhs_priv, self.dhs_pub = fresh_priv, x25519_pub(fresh_priv)
            self.rk, self.cks = kdf_rk(self.rk, x25519_dh(self.dhs_priv, self.dhr))


def pt_text(tid, text):
    return u8(TEXT) + u32(tid) + bytes16(text)


def pt_receipt(tid):
    return u8(RECEIPT) + u32(tid)


def pt_hello():
    return u8(HELLO)


def pt_end():
    return u8(END)


class Conversation:
    """A chat in a conversation: the ratchet plus the rules of VERSION 2."""

    def __init__(self, ratchet, initiator):
        self.r = ratchet
        self.initiator = initiator
        self.hello_done = False
        self.next_text_id = 1
        self.last_rx_text_id = 0
        self.next_ref = 1

    def seal_hello(self):
        assert self.initiator and not self.hello_done
        e2e, info = self.r.encrypt(pt_hello())
        self.hello_done = True
        return e2e, info, pt_hello()

    def seal_text(self, text):
        assert self.hello_done
        pt = pt_text(self.next_text_id, text)
        e2e, info = self.r.encrypt(pt)
        self.next_text_id += 1
        return e2e, info, pt

    def seal_receipt(self, tid):
        assert self.hello_done and 1 <= tid <= self.last_rx_text_id
        pt = pt_receipt(tid)
        e2e, info = self.r.encrypt(pt)
        return e2e, info, pt

    def seal_end(self):
        assert self.hello_done
        e2e, info = self.r.encrypt(pt_end())
        return e2e, info, pt_end()

    def take_ref(self):
        ref = self.next_ref
        self.next_ref += 1
        return ref

    def _rules(self, pt, in_end_record):
        if len(pt) == 0:
            raise Refused("malformed")
        kind, body = pt[0], pt[1:]
        if not self.hello_done and (self.initiator or kind != HELLO):
            raise Refused("HELLO first")
        if in_end_record and kind != END:
            raise Refused("not END in an END record")
        if kind == HELLO:
            if self.initiator or self.hello_done:
                raise Refused("HELLO again")
            if body:
                raise Refused("malformed")
            return {"kind": HELLO}
        if kind == TEXT:
            if len(body) < 6:
                raise Refused("malformed")
            tid, tlen = struct.unpack(">IH", body[:6])
            if tlen > 4096:
                raise Refused("too large")
            if len(body) != 6 + tlen:
                raise Refused("malformed")
            if tid == 0:
                raise Refused("TEXT id 0")
            return {"kind": TEXT, "id": tid, "text": body[6:]}
        if kind == RECEIPT:
            if len(body) != 4:
                raise Refused("malformed")
            tid = struct.unpack(">I", body)[0]
            if tid > self.next_text_id - 1:
                tid = 0  # never sent: ignored
            return {"kind": RECEIPT, "id": tid}
        if kind == END:
            if not in_end_record:
                raise Refused("END outside an END record")
            if body:
                raise Refused("malformed")
            return {"kind": END}
        raise Refused("unknown kind")

    def open(self, e2e, fresh=None, in_end_record=False):
        """Accept a message or raise Refused (state unchanged). fresh:
        the private value the DH step draws, if it takes one."""
        pt, s, notes = self.r.decrypt(e2e)
        ev = self._rules(pt, in_end_record)
        if notes["dh_step"]:
            assert fresh is not None
        s.complete(notes, fresh)
        self.r = s
        if ev["kind"] == HELLO:
            self.hello_done = True
        if ev["kind"] == TEXT:
            self.last_rx_text_id = max(self.last_rx_text_id, ev["id"])
        return pt, ev, notes

# ---- CLIENT STATE ----

STATE_MAGIC = b"SMSGSTAT"
STATE_VERSION = 1


def state_key(pkcs8, salt):
    prk = extract(salt, pkcs8)
    return prk, expand(prk, "secmsg/2 state", 32)


def conversation_value(peer, since, conv, fingerprint):
    r = conv.r
    flags = (1 if conv.initiator else 0) | (2 if conv.hello_done else 0)
    chains = ((1 if r.cks is not None else 0) | (2 if r.ckr is not None else 0)
              | (4 if r.dhr is not None else 0))
    out = name(peer) + u64(since) + u8(flags) + fingerprint
    out += u32(conv.next_text_id) + u32(conv.last_rx_text_id) + u32(conv.next_ref)
    out += r.rk + u8(chains)
    out += (r.cks or bytes(32)) + (r.ckr or bytes(32)) + r.dhs_priv
    out += (r.dhr or bytes(32)) + r.ad
    out += u32(r.ns) + u32(r.nr) + u32(r.pn)
    assert len(r.skipped) <= MAX_KEPT
    out += u16(len(r.skipped))
    for dh, n, mk in r.skipped:
        out += dh + u32(n) + mk
    return out


def item(t, value):
    return u8(t) + u32(len(value)) + value


def state_plaintext(self_name, conversations):
    """conversations: [(peer, since, Conversation, fingerprint)]."""
    out = item(1, name(self_name))
    for peer, since, conv, fpr in conversations:
        out += item(2, conversation_value(peer, since, conv, fpr))
    return out


def request_value(peer, asked, is_a, nonce_a, share_a, own_private,
                  accept=None):
    """A REQUEST item's value (type 4). accept: (nonce_b, share_b, sig_b)
    once accepted; B's always is. own_private's public key is this
    side's share."""
    assert is_a or accept is not None
    nonce_b, share_b, sig_b = accept or (bytes(32), bytes(32), b"")
    assert x25519_pub(own_private) == (share_a if is_a else share_b)
    assert (accept is None) == (len(sig_b) == 0) and len(sig_b) <= 1024
    flags = (1 if is_a else 0) | (2 if accept else 0)
    return (name(peer) + u64(asked) + u8(flags) + nonce_a + share_a
            + nonce_b + share_b + own_private + bytes16(sig_b))


def state_plaintext_requests(self_name, requests):
    """A state of requests only: [request_value(...)], oldest first."""
    return item(1, name(self_name)) + b"".join(item(4, v) for v in requests)


def state_file(pkcs8, salt, nonce, plaintext):
    hdr = STATE_MAGIC + u16(STATE_VERSION) + salt + nonce
    prk, key = state_key(pkcs8, salt)
    return hdr, prk, key, hdr + aead_seal(key, nonce, plaintext, hdr)


def state_open(pkcs8, data):
    if len(data) < 70 or data[:8] != STATE_MAGIC or data[8:10] != u16(STATE_VERSION):
        raise ValueError("not a state file")
    hdr, salt, nonce = data[:54], data[10:42], data[42:54]
    _, key = state_key(pkcs8, salt)
    return aead_open(key, nonce, data[54:], hdr)


def safety_number(fa, fb):
    """KNOWN PEERS, Safety numbers: two fingerprints (64 lower-case hex
    digits each) to 12 groups of 5 digits."""
    lo, hi = sorted([fa.encode(), fb.encode()])
    d = b"".join(hashlib.sha256(b"secmsg safety number %d" % n + lo + hi)
                 .digest() for n in (1, 2))
    return " ".join("%05d" % (int.from_bytes(d[5 * i:5 * i + 5], "big")
                             % 100000) for i in range(12))
