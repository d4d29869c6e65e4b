/* Checks, in the reader's browser, that the decisions this page shows are in the signed log.
 *
 * The page carries (in <script type="application/json" id="ledger-proofs">) the latest signed
 * checkpoint (C2SP signed-note, with any tlog-cosignature/v1 lines), the keys the publisher trusts
 * (the log's verifier key; from a policy, the witnesses' keys and the quorum) and, per decision
 * shown, its leaf hash, leaf index and RFC 9162 audit path. This script checks, with WebCrypto
 * only (Ed25519 and SHA-256, no library): the log's signature on the checkpoint, each witness's
 * cosignature and the quorum, each audit path against the checkpoint's root (RFC 9162 §2.1.3.2),
 * and that the decisions proven are exactly those the page shows. It then says 已核验, or names
 * what failed. Without it the page reads the same: nothing depends on it (docs/publishing.md).
 */
(function () {
  "use strict";
  var block = document.getElementById("ledger-proofs");
  var status = document.getElementById("proofs-status");
  if (!block || !status) { return; }
  var encoder = new TextEncoder();
  var SIG_PREFIX = "\u2014 ";

  function Failure(text) { this.text = text; }

  function show(result, text) {
    status.hidden = false;
    status.className = "verify-status " + result;
    status.setAttribute("data-result", result);
    status.textContent = text;
  }

  function fail(text) { throw new Failure("核验失败：" + text); }

  function bytes(b64, what) {
    var binary;
    try { binary = atob(b64); } catch (e) { fail(what + "不是有效的 base64"); }
    var out = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { out[i] = binary.charCodeAt(i); }
    return out;
  }

  function concat(parts) {
    var length = parts.reduce(function (n, p) { return n + p.length; }, 0);
    var out = new Uint8Array(length);
    var at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  function same(a, b) {
    if (a.length !== b.length) { return false; }
    for (var i = 0; i < a.length; i++) { if (a[i] !== b[i]) { return false; } }
    return true;
  }

  function hex(a) {
    return Array.prototype.map.call(a, function (x) { return (x < 16 ? "0" : "") + x.toString(16); }).join("");
  }

  async function sha256(data) { return new Uint8Array(await crypto.subtle.digest("SHA-256", data)); }

  /* A signed note: its body (final newline included), its checkpoint fields, its signature lines. */
  function parseNote(text) {
    var cut = text.lastIndexOf("\n\n");
    if (cut < 0 || text.charAt(text.length - 1) !== "\n") { fail("检查点不是签名文本（signed note）"); }
    var body = text.slice(0, cut + 1);
    var lines = body.slice(0, -1).split("\n");
    if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) { fail("检查点的格式不对"); }
    var root = bytes(lines[2], "检查点的根哈希");
    if (root.length !== 32) { fail("检查点的根哈希不是 32 字节"); }
    return {
      body: encoder.encode(body), origin: lines[0], size: Number(lines[1]), root: root,
      signatures: text.slice(cut + 2, -1).split("\n")
    };
  }

  /* A note verifier key <name>+<key ID>+<base64(type ‖ Ed25519 key)>, its key ID recomputed. */
  async function parseKey(text, type, what) {
    text = String(text);
    var first = text.indexOf("+"), second = text.indexOf("+", first + 1);
    var parts = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
    if (first < 1 || second < 0 || !/^[0-9a-fA-F]{8}$/.test(parts[1])) { fail(what + "的格式不对"); }
    var raw = bytes(parts[2], what);
    if (raw.length !== 33 || raw[0] !== type) { fail(what + "不是 Ed25519 公钥"); }
    var id = (await sha256(concat([encoder.encode(parts[0] + "\n"), raw]))).slice(0, 4);
    if (hex(id) !== parts[1].toLowerCase()) { fail(what + "的密钥编号与公钥不符"); }
    var key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
    return { name: parts[0], id: id, key: key };
  }

  /* The signature line of ``key`` on the note, as bytes after the key ID, or null. */
  function lineOf(note, key) {
    var prefix = SIG_PREFIX + key.name + " ";
    for (var i = 0; i < note.signatures.length; i++) {
      var line = note.signatures[i];
      if (line.indexOf(prefix) !== 0) { continue; }
      var raw = bytes(line.slice(prefix.length), key.name + " 的签名");
      if (raw.length >= 4 && same(raw.slice(0, 4), key.id)) { return raw.slice(4); }
    }
    return null;
  }

  function verify(key, signature, message) {
    return crypto.subtle.verify({ name: "Ed25519" }, key.key, signature, message);
  }

  async function logSigner(note, keys) {
    for (var i = 0; i < keys.length; i++) {
      var key = await parseKey(keys[i], 0x01, "日志公钥");
      var sig = lineOf(note, key);
      if (sig === null) { continue; }
      if (sig.length !== 64 || !(await verify(key, sig, note.body))) { fail("检查点的日志签名（" + key.name + "）无效"); }
      return key.name + "+" + hex(key.id);
    }
    return fail("检查点没有发布方所信任的日志公钥的签名");
  }

  /* tlog-cosignature/v1: key ID ‖ u64 time ‖ signature over "cosignature/v1\ntime <t>\n" ‖ body. */
  async function cosigners(note, witnesses) {
    var found = [];
    var names = Object.keys(witnesses).sort();
    for (var i = 0; i < names.length; i++) {
      var key = await parseKey(witnesses[names[i]], 0x04, "见证人 " + names[i] + " 的公钥");
      var raw = lineOf(note, key);
      if (raw === null) { continue; }
      var time = 0n;
      for (var b = 0; b < 8 && raw.length === 72; b++) { time = time * 256n + BigInt(raw[b]); }
      var message = concat([encoder.encode("cosignature/v1\ntime " + time.toString() + "\n"), note.body]);
      if (raw.length !== 72 || !(await verify(key, raw.slice(8), message))) {
        fail("见证人 " + names[i] + " 的副签无效");
      }
      found.push(names[i]);
    }
    return found;
  }

  function satisfied(data, name, have) {
    if (Object.prototype.hasOwnProperty.call(data.witnesses, name)) { return have.indexOf(name) >= 0; }
    var group = data.groups[name];
    if (!group) { return false; }
    var count = group.members.filter(function (m) { return satisfied(data, m, have); }).length;
    return count >= group.k;
  }

  async function nodeHash(left, right) { return sha256(concat([new Uint8Array([1]), left, right])); }

  /* RFC 9162 §2.1.3.2: does ``path`` lead from the leaf hash at ``index`` to ``root`` of ``size``? */
  async function included(leaf, index, size, path, root) {
    if (index >= size) { return false; }
    var fn = index, sn = size - 1, r = leaf;
    for (var i = 0; i < path.length; i++) {
      if (sn === 0) { return false; }
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(path[i], r);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await nodeHash(r, path[i]);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 && same(r, root);
  }

  /* The decision ids the page shows (its "决定编号" cells), in page order. */
  function shownIds() {
    var ids = [];
    Array.prototype.forEach.call(document.querySelectorAll("main .ids"), function (el) {
      el.textContent.split(",").forEach(function (id) {
        id = id.trim();
        if (id && ids.indexOf(id) < 0) { ids.push(id); }
      });
    });
    return ids;
  }

  async function checkProofs(data, note) {
    var hashes = data.hashes.map(function (h, i) {
      var raw = bytes(h, "第 " + (i + 1) + " 个哈希");
      if (raw.length !== 32) { fail("第 " + (i + 1) + " 个哈希不是 32 字节"); }
      return raw;
    });
    function hashAt(ref, n) {
      if (typeof ref !== "number" || !(ref >= 0 && ref < hashes.length)) { fail("第 " + n + " 条记录的证明引用了不存在的哈希"); }
      return hashes[ref];
    }
    var shown = shownIds();
    var seen = {};
    for (var i = 0; i < data.proofs.length; i++) {
      var proof = data.proofs[i], n = i + 1, id = proof[0], index = proof[1];
      var leaf = hashAt(proof[2], n);
      var path = proof[3].map(function (ref) { return hashAt(ref, n); });
      if (shown.indexOf(id) < 0) { fail("第 " + n + " 条证明（" + id + "）不是本页显示的决定"); }
      if (seen[index] !== undefined) { fail("第 " + n + " 条记录与第 " + seen[index] + " 条记录指向同一叶子"); }
      seen[index] = n;
      if (!(await included(leaf, index, note.size, path, note.root))) {
        fail("第 " + n + " 条记录（" + id + "）的证明与检查点不符");
      }
    }
    var proven = data.proofs.map(function (p) { return p[0]; }).concat(data.pending);
    shown.forEach(function (id) { if (proven.indexOf(id) < 0) { fail("本页显示的决定 " + id + " 没有包含证明"); } });
  }

  async function run() {
    var data = JSON.parse(block.textContent);
    var note = parseNote(data.checkpoint);
    var signer = await logSigner(note, data.log_keys);
    var witnesses = await cosigners(note, data.witnesses || {});
    if (data.quorum && !satisfied(data, data.quorum, witnesses)) {
      fail("检查点未达到见证法定数（" + data.quorum + "），已副签：" + (witnesses.join("、") || "无"));
    }
    await checkProofs(data, note);
    var text = "已核验：本页 " + data.proofs.length + " 条决定均在签名检查点中（" + note.origin + "，共 " +
      note.size + " 条记录，日志签名 " + signer + "）；见证人：" + (witnesses.join("、") || "无") + "。";
    if (data.pending.length) {
      text += "另有 " + data.pending.length + " 条决定记录于该检查点之后，尚未签名：" + data.pending.join("、") + "。";
    }
    show("verified", text);
  }

  if (!window.crypto || !crypto.subtle) {
    show("unsupported", "此浏览器无法核验本页（需要 HTTPS 和支持 WebCrypto 的浏览器）；可用 ledger verify-proof 离线核验。");
    return;
  }
  show("checking", "正在核验本页的包含证明……");
  run().catch(function (e) {
    if (e instanceof Failure) { show("failed", e.text); return; }
    if (e && e.name === "NotSupportedError") {
      show("unsupported", "此浏览器不支持 Ed25519 核验；可用 ledger verify-proof 离线核验。");
      return;
    }
    show("failed", "核验失败：本页的证明数据无法读取（" + (e && e.message ? e.message : e) + "）");
  });
}());
