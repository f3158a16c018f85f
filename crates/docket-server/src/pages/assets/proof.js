// docket: the in-page proof check of the case timeline. The only script of
// the pages; everything else works without it.
//
// For each event on the page, the browser itself (WebCrypto: SHA-256 and
// Ed25519) checks, without trusting the server that rendered the page:
//   1. the latest checkpoint (/v1/checkpoint) is signed by the log key
//      shown on the page (a C2SP signed note: Ed25519 over its text);
//   2. the event's signed form as the log holds it (/desk/record/SEQ: the
//      wire form and the system time) carries a valid Ed25519 signature
//      by the event's key over "docket/v1/event\0" || canonical bytes;
//   3. its Merkle leaf, SHA-256(0x00 || seq (u64 BE) || system time
//      (i64 BE, µs) || wire), is included in the checkpoint's tree: the
//      RFC 6962 inclusion proof (/v1/proof/inclusion) leads to the
//      checkpoint's root (RFC 9162, 2.1.3.2).
// Then it says "verified" or "failed" for each event and for the page.
(() => {
  'use strict';
  const section = document.getElementById('proof');
  if (!section) return;
  const summary = document.getElementById('proof-summary');
  const detail = document.getElementById('proof-detail');
  const words = { verified: summary.dataset.verified, failed: summary.dataset.failed };
  const enc = new TextEncoder();

  const fail = (what) => { throw new Error(what); };
  const hex = (s) => {
    if (typeof s !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(s)) fail('not hex');
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
    return out;
  };
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const be64 = (n, signed) => {
    const out = new Uint8Array(8);
    const view = new DataView(out.buffer);
    if (signed) view.setBigInt64(0, BigInt(n)); else view.setBigUint64(0, BigInt(n));
    return out;
  };
  const ed25519 = async (publicKey, message, signature) => {
    const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
  };
  const get = async (url) => {
    const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
    if (!response.ok) fail(`${url}: HTTP ${response.status}`);
    return response;
  };

  // The C2SP verifier key: name+hex key id+base64(0x01 || key).
  const parseVkey = (text) => {
    // The base64 key may itself hold '+': split at the first two only.
    const first = text.indexOf('+');
    const second = text.indexOf('+', first + 1);
    if (first < 0 || second < 0) fail('log key: not a verifier key');
    const [name, id, key] = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
    const raw = b64(key);
    if (!name || !id || raw.length !== 33 || raw[0] !== 1) fail('log key: not an Ed25519 verifier key');
    return { name, id: hex(id), key: raw.slice(1) };
  };

  // The latest checkpoint, its signature by the log key checked.
  const checkpoint = async (vkey) => {
    const note = await (await get('/v1/checkpoint')).text();
    const split = note.indexOf('\n\n');
    if (split < 0) fail('checkpoint: no signature block');
    const text = note.slice(0, split + 1);
    const [origin, size, root] = text.split('\n');
    let signed = false;
    for (const line of note.slice(split + 2).split('\n')) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m || m[1] !== vkey.name) continue;
      const sig = b64(m[2]);
      if (sig.length !== 68 || !equal(sig.slice(0, 4), vkey.id)) continue;
      if (await ed25519(vkey.key, enc.encode(text), sig.slice(4))) { signed = true; break; }
    }
    if (!signed) fail('checkpoint: no valid signature by the log key');
    if (!/^\d+$/.test(size)) fail('checkpoint: size');
    return { origin, size: Number(size), root: b64(root) };
  };

  // The wire form: LEB128 length, the canonical bytes, 64 signature bytes.
  const unwire = (wire) => {
    let length = 0; let at = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= wire.length || shift > 63) fail('wire form: length');
      const byte = wire[at++];
      length += (byte & 0x7f) * 2 ** shift;
      if (!(byte & 0x80)) break;
    }
    if (wire.length !== at + length + 64) fail('wire form: size');
    return { bytes: wire.slice(at, at + length), signature: wire.slice(at + length) };
  };

  // RFC 9162 2.1.3.2: the root an inclusion proof leads to.
  const rootFrom = async (index, size, leaf, path) => {
    if (index >= size) fail('inclusion: index beyond the tree');
    let fn = index; let sn = size - 1; let r = leaf;
    for (const p of path) {
      if (sn === 0) fail('inclusion: proof too long');
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat([1], p, r));
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await sha256(concat([1], r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) fail('inclusion: proof too short');
    return r;
  };

  const checkRecord = async (seq, cp) => {
    const record = await (await get(`/desk/record/${seq}`)).json();
    if (record.seq !== seq) fail(`#${seq}: the server sent record ${record.seq}`);
    const wire = hex(record.wire);
    const { bytes, signature } = unwire(wire);
    const message = concat(enc.encode('docket/v1/event\0'), bytes);
    if (!await ed25519(hex(record.signed.event.key), message, signature)) fail(`#${seq}: event signature`);
    const leaf = await sha256(concat([0], be64(seq, false), be64(record.system_time_us, true), wire));
    const proof = await (await get(`/v1/proof/inclusion?seq=${seq}&size=${cp.size}`)).json();
    const root = await rootFrom(seq, cp.size, leaf, proof.proof.map(hex));
    if (!equal(root, cp.root)) fail(`#${seq}: not in the checkpoint's tree`);
  };

  const mark = (element, ok) => {
    element.textContent = ok ? words.verified : words.failed;
    element.classList.remove('verified', 'failed');
    element.classList.add(ok ? 'verified' : 'failed');
  };

  const run = async () => {
    const cells = [...document.querySelectorAll('#timeline .proof-status[data-seq]')];
    const seqs = cells.map((cell) => Number(cell.dataset.seq));
    let cp = await checkpoint(parseVkey(section.dataset.logKey));
    // A record newer than the checkpoint: the next one is signed within a second or so.
    for (let tries = 0; seqs.some((s) => s >= cp.size) && tries < 5; tries++) {
      await new Promise((done) => setTimeout(done, 1000));
      cp = await checkpoint(parseVkey(section.dataset.logKey));
    }
    const errors = [];
    for (const [i, cell] of cells.entries()) {
      try { await checkRecord(seqs[i], cp); mark(cell, true); } catch (e) { mark(cell, false); errors.push(e.message); }
    }
    detail.textContent = `${cp.origin} · ${cp.size}` + (errors.length ? ` · ${errors.join('; ')}` : '');
    mark(summary, errors.length === 0);
  };

  run().catch((e) => { detail.textContent = e.message; mark(summary, false); });
})();
