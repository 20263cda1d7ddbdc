// What the real kernel in the tab did, frame by frame: the frames its lab
// captured on the bridge's ports (the report's `frames`, a `FrameLog` of
// harness/src/frames.rs), read back into Ethernet, ARP, IP and TCP facts,
// named by connection and leg, written as a pcapng file for Wireshark
// (after harness/src/pcapng.rs), and set into the packet walk in place of
// its placeholders. Loaded with the kernel, on the first run.

// ---- reading frames ----------------------------------------------------------

const hex2 = (b) => b.toString(16).padStart(2, "0");

/** `0e:01:02:03:04:05`. */
export const formatMac = (bytes) => Array.from(bytes, hex2).join(":");

/** The frame's bytes from the report's lowercase hex; null when it is not hex. */
export function fromHex(text) {
  if (typeof text !== "string" || text.length % 2 || /[^0-9a-f]/i.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** An IPv6 address as RFC 5952 writes it (the longest run of zero groups as `::`),
 * and an IPv4-mapped one as its IPv4 address, as the probes report addresses. */
function ipv6(bytes) {
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return Array.from(bytes.slice(12, 16)).join(".");
  let best = [-1, 0];
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best[1] && j - i > 1) best = [i, j - i];
    i = j;
  }
  const text = (gs) => gs.map((g) => g.toString(16)).join(":");
  if (best[0] < 0) return text(groups);
  return `${text(groups.slice(0, best[0]))}::${text(groups.slice(best[0] + best[1]))}`;
}

const ipv4 = (bytes) => Array.from(bytes).join(".");
/** `192.168.1.100:40000`, `[2001:db8::1]:80`, as Rust writes a SocketAddr. */
export const endpoint = (address, port) => (address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`);

/** An IP packet's source, destination, protocol and payload; null when cut short. */
function ip(p) {
  if (!p.length) return null;
  if (p[0] >> 4 === 4) {
    const header = (p[0] & 15) * 4;
    if (header < 20 || p.length < header) return null;
    return { src: ipv4(p.subarray(12, 16)), dst: ipv4(p.subarray(16, 20)), protocol: p[9], rest: p.subarray(header) };
  }
  if (p[0] >> 4 === 6 && p.length >= 40) return { src: ipv6(p.subarray(8, 24)), dst: ipv6(p.subarray(24, 40)), protocol: p[6], rest: p.subarray(40) };
  return null;
}

/** What a frame carries, as harness/src/frames.rs `decode` reads it: null when
 * shorter than an Ethernet header; `kind` says how far it could be read. */
export function decodeFrame(f) {
  if (!f || f.length < 14) return null;
  const s = { dstMac: formatMac(f.subarray(0, 6)), srcMac: formatMac(f.subarray(6, 12)), ethertype: (f[12] << 8) | f[13], kind: "other" };
  const body = f.subarray(14);
  if (s.ethertype === 0x0806 && body.length >= 28 && [0, 1, 8, 0, 6, 4].every((b, i) => body[i] === b)) {
    return Object.assign(s, { kind: "arp", op: (body[6] << 8) | body[7], senderMac: formatMac(body.subarray(8, 14)), sender: ipv4(body.subarray(14, 18)), target: ipv4(body.subarray(24, 28)) });
  }
  if (s.ethertype !== 0x0800 && s.ethertype !== 0x86dd) return s;
  let packet = ip(body);
  if (!packet) return s;
  let tunnel = null;
  if (packet.protocol === 4 || packet.protocol === 41) {
    tunnel = [packet.src, packet.dst];
    packet = ip(packet.rest);
    if (!packet) return s;
  }
  const { src, dst, protocol, rest } = packet;
  if ((protocol === 6 || protocol === 17) && rest.length >= 4) {
    const flags = protocol === 6 && rest.length > 13 ? rest[13] : 0;
    return Object.assign(s, { kind: protocol === 6 ? "tcp" : "udp", src, dst, sport: (rest[0] << 8) | rest[1], dport: (rest[2] << 8) | rest[3], flags, tunnel });
  }
  if (protocol === 58 && (rest[0] === 135 || rest[0] === 136) && rest.length >= 24) {
    return Object.assign(s, { kind: rest[0] === 135 ? "ns" : "na", src, dst, target: ipv6(rest.subarray(8, 24)) });
  }
  return s;
}

/** TCP flags as tshark writes them: `SYN`, `SYN, ACK`. */
export function tcpFlags(flags) {
  const names = [
    [2, "SYN"],
    [1, "FIN"],
    [4, "RST"],
    [8, "PSH"],
    [16, "ACK"],
  ].filter(([bit]) => flags & bit);
  return names.length ? names.map(([, n]) => n).join(", ") : "none";
}

/** One line about what a frame is, after its MACs. */
export function describe(s) {
  if (!s) return "a frame too short to read";
  switch (s.kind) {
    case "tcp":
    case "udp": {
      const line = `${s.kind.toUpperCase()} ${endpoint(s.src, s.sport)} → ${endpoint(s.dst, s.dport)}${s.kind === "tcp" ? ` [${tcpFlags(s.flags)}]` : ""}`;
      return s.tunnel ? `${line} inside IP-in-IP ${s.tunnel[0]} → ${s.tunnel[1]}` : line;
    }
    case "arp":
      return s.op === 1 ? `ARP who has ${s.target}? tell ${s.sender}` : s.op === 2 ? `ARP ${s.sender} is at ${s.senderMac}` : `ARP operation ${s.op}`;
    case "ns":
      return `ICMPv6 neighbour solicitation for ${s.target}`;
    case "na":
      return `ICMPv6 neighbour advertisement for ${s.target}`;
    default:
      return `ethertype 0x${s.ethertype.toString(16).padStart(4, "0")}`;
  }
}

// ---- naming frames: connection and leg ---------------------------------------

/**
 * The report's frames, read and named as harness/src/frames.rs `Annotated`
 * names them: for each frame its summary, the connection it belongs to (an
 * index into `report.connections`) and its leg (`client → director`).
 */
export function annotate(report) {
  const log = report.frames;
  const connections = report.connections || [];
  const clientEnd = (c) => endpoint(String(c.client), c.client_port);
  const byEnd = new Map(connections.map((c, i) => [`${c.service}\n${clientEnd(c)}`, i]));
  const servicesAt = new Map();
  for (const [service, ends] of Object.entries(log.services || {})) {
    for (const end of ends || []) servicesAt.set(end, [...(servicesAt.get(end) || []), service]);
  }
  const clients = new Set(connections.map(clientEnd));
  const summaries = log.frames.map((f) => decodeFrame(fromHex(f.bytes)));
  const ends = (s) => {
    if (!s || (s.kind !== "tcp" && s.kind !== "udp")) return null;
    const [a, b] = [endpoint(s.src, s.sport), endpoint(s.dst, s.dport)];
    return clients.has(a) ? [a, b] : clients.has(b) ? [b, a] : null;
  };
  const connection = summaries.map((s) => {
    const e = ends(s);
    if (!e) return null;
    const services = servicesAt.get(e[1]);
    if (!services) {
      const i = connections.findIndex((c) => clientEnd(c) === e[0]);
      return i < 0 ? null : i;
    }
    for (const service of services) if (byEnd.has(`${service}\n${e[0]}`)) return byEnd.get(`${service}\n${e[0]}`);
    return null;
  });
  const owners = new Map();
  log.frames.forEach((f, i) => summaries[i] && !owners.has(summaries[i].srcMac) && owners.set(summaries[i].srcMac, f.port));
  const port = (i) => log.ports[i] || { host: "?", interface: "", role: "" };
  const leg = (i) => {
    const f = log.frames[i];
    const from = port(f.port).host;
    const s = summaries[i];
    if (!s) return from;
    if (s.dstMac === "ff:ff:ff:ff:ff:ff") return `${from} → everyone`;
    return owners.has(s.dstMac) ? `${from} → ${port(owners.get(s.dstMac)).host}` : `${from} → ${s.dstMac}`;
  };
  const comment = (i) => {
    if (connection[i] === null) return null;
    const c = connections[connection[i]];
    const chosen = c.real_server ? `the kernel chose ${c.real_server}` : c.error ? `no real server answered (${c.error})` : "no real server answered";
    return `${c.service} from ${clientEnd(c)}: ${chosen}; ${leg(i)}`;
  };
  return { log, summaries, connection, owners, port, leg, comment, hostOf: (mac) => (owners.has(mac) ? port(owners.get(mac)).host : null) };
}

// ---- pcapng ----------------------------------------------------------------------
// One section, one interface description per bridge port, an enhanced packet
// block per frame with its comment; little-endian, nanosecond timestamps
// (IETF draft-ietf-opsawg-pcapng). Every block is `type, total length, body,
// total length`; options are `code, length, value`, each padded to 32 bits.

const utf8 = new TextEncoder();

class Blocks {
  constructor() {
    this.parts = [];
  }
  block(type, body) {
    const total = body.length + 12;
    const b = new Uint8Array(total);
    const v = new DataView(b.buffer);
    v.setUint32(0, type, true);
    v.setUint32(4, total, true);
    b.set(body, 8);
    v.setUint32(total - 4, total, true);
    this.parts.push(b);
  }
}

/** Bytes, growing: numbers little-endian, options padded. */
class Body {
  constructor() {
    this.bytes = [];
  }
  u16(n) {
    this.bytes.push(n & 255, (n >> 8) & 255);
    return this;
  }
  u32(n) {
    this.u16(n & 0xffff).u16(Math.floor(n / 0x10000) & 0xffff);
    return this;
  }
  raw(data) {
    for (const b of data) this.bytes.push(b);
    while (this.bytes.length % 4) this.bytes.push(0);
    return this;
  }
  option(code, value) {
    // An option holds at most 65,535 bytes; a text cut there stops at a whole character.
    let v = value.subarray(0, 65535);
    if (v.length < value.length && value.text) {
      let end = v.length;
      while (end > 0 && (value[end] & 0xc0) === 0x80) end--;
      v = value.subarray(0, end);
    }
    return this.u16(code).u16(v.length).raw(v);
  }
  text(code, s) {
    const value = utf8.encode(s);
    value.text = true;
    return this.option(code, value);
  }
  end() {
    return this.u32(0);
  }
  done() {
    return Uint8Array.from(this.bytes);
  }
}

/** A port's interface name: the host, and its interface when not the host's first (as `Port::name`). */
function interfaceNames(ports) {
  const seen = new Set();
  return ports.map((p) => {
    const first = !seen.has(p.host);
    seen.add(p.host);
    return first ? p.host : `${p.host} ${p.interface}`;
  });
}

/** The report's frames as a pcapng file (a Blob), or null when it holds none. */
export function pcapng(report) {
  const bytes = pcapngBytes(report);
  return bytes && new Blob([bytes], { type: "application/octet-stream" });
}

/** The report's frames as the bytes of a pcapng file, or null when it holds none. */
export function pcapngBytes(report) {
  if (!report || !report.frames) return null;
  const a = annotate(report);
  const out = new Blocks();
  const header = new Body().u32(0x1a2b3c4d).u16(1).u16(0).u32(0xffffffff).u32(0xffffffff);
  out.block(0x0a0d0d0a, header.text(4, `lvsdr playground: ${report.topology}`).end().done());
  for (const name of interfaceNames(a.log.ports)) {
    // LINKTYPE_ETHERNET, the snap length, if_name, if_tsresol = 9 (nanoseconds).
    out.block(1, new Body().u16(1).u16(0).u32(a.log.snap).text(2, name).option(9, Uint8Array.of(9)).end().done());
  }
  a.log.frames.forEach((f, i) => {
    const data = fromHex(f.bytes) || new Uint8Array();
    const at = BigInt(f.at_ns);
    const body = new Body()
      .u32(f.port)
      .u32(Number(at >> 32n))
      .u32(Number(at & 0xffffffffn))
      .u32(data.length)
      .u32(Math.max(f.wire_len, data.length))
      .raw(data);
    const comment = a.comment(i);
    if (comment) body.text(1, comment).end();
    out.block(6, body.done());
  });
  const bytes = new Uint8Array(out.parts.reduce((n, p) => n + p.length, 0));
  out.parts.reduce((at, p) => (bytes.set(p, at), at + p.length), 0);
  return bytes;
}

// ---- the packet walk, with the frames the kernel sent ------------------------------

const isSyn = (s) => s && s.kind === "tcp" && (s.flags & 0x12) === 0x02;
const isReplyTo = (s, client) => s && (s.kind === "tcp" || s.kind === "udp") && endpoint(s.dst, s.dport) === client;

/** The failed checks of a report about `service` (theirs, or the lab's as a whole). */
export function failedChecks(report, service) {
  return (report.checks || []).filter((c) => !c.pass && !c.advisory && (!c.name.includes(" ") || c.name.endsWith(` ${service}`)));
}

/**
 * The walk's steps, each with the frame the kernel really sent on that leg:
 * `real` is `{ number, frame: {eth_src, eth_dst, ip_src, ip_dst, what}, changed,
 * port, note }`, or `{ missing: true, note }` where the frame never came
 * (`broken` on the first such step, with the failed checks that explain it).
 * Steps no lab captures (no leg, or a host off the bridge) are left as they are.
 */
export function realWalk(steps, report, service) {
  if (!report || !report.frames || !steps.length || !steps.some((s) => s.leg)) return steps;
  const a = annotate(report);
  const hosts = new Set(a.log.ports.map((p) => p.host));
  const numbers = a.log.frames.map((_, i) => i);
  const from = (i) => a.port(a.log.frames[i].port).host;
  const mine = report.connections.map((c, i) => i).filter((i) => report.connections[i].service === service);
  const framesOf = (c) => numbers.filter((i) => a.connection[i] === c);
  const clientOf = (c) => endpoint(String(report.connections[c].client), report.connections[c].client_port);
  // The connection to show: the first the kernel sent where the walk's
  // scheduler sends it (by its answer, or by the director's copy of its SYN).
  const forward = steps.find((s) => s.leg === "forward");
  const pick = forward && forward.to;
  const wentTo = (c) => report.connections[c].real_server || a.hostOf((a.summaries[framesOf(c).find((i) => a.port(a.log.frames[i].port).role === "director" && isSyn(a.summaries[i]))] || {}).dstMac);
  const shown = mine.find((c) => pick && wentTo(c) === pick) ?? mine[0];
  const conn = shown === undefined ? [] : framesOf(shown);
  const client = shown === undefined ? null : clientOf(shown);
  const vip = (steps.find((s) => s.leg === "syn") || steps[0]).frame.ip_dst;
  const real = (i, note) => {
    const s = a.summaries[i];
    const tcp = s && (s.kind === "tcp" || s.kind === "udp");
    return {
      number: i + 1,
      port: a.port(a.log.frames[i].port),
      note,
      frame: {
        eth_src: s ? s.srcMac : "",
        eth_dst: s ? s.dstMac : "",
        ip_src: tcp ? endpoint(s.src, s.sport) : s && s.kind === "arp" ? s.sender : s && s.src ? s.src : "",
        ip_dst: tcp ? endpoint(s.dst, s.dport) : s && s.kind === "arp" ? s.target : s && s.dst ? s.dst : "",
        what: describe(s),
      },
    };
  };
  const first = (list, ...tests) => {
    for (const t of tests) {
      const i = list.find(t);
      if (i !== undefined) return i;
    }
    return undefined;
  };
  let previous = null;
  let broken = false;
  let lastSyn;
  return steps.map((step) => {
    if (!step.leg || !hosts.has(step.from)) return step;
    if (broken) return { ...step, real: { missing: true, after: true, note: "Not reached: the connection broke at an earlier step." } };
    let i;
    let note = "";
    const sentBy = (host) => (j) => from(j) === host;
    switch (step.leg) {
      case "ask":
        i = first(numbers, (j) => sentBy(step.from)(j) && ((a.summaries[j]?.kind === "arp" && a.summaries[j].op === 1 && a.summaries[j].target === vip) || (a.summaries[j]?.kind === "ns" && a.summaries[j].target === vip)));
        break;
      case "answer": {
        const answers = numbers.filter((j) => (a.summaries[j]?.kind === "arp" && a.summaries[j].op === 2 && a.summaries[j].sender === vip) || (a.summaries[j]?.kind === "na" && a.summaries[j].target === vip));
        i = first(answers, sentBy(step.from), () => true);
        const others = [...new Set(answers.map(from))].filter((h) => h !== step.from);
        if (i !== undefined && from(i) !== step.from) note = `The answer came from ${from(i)}, not ${step.from}.`;
        else if (others.length) note = `${others.join(" and ")} answered too.`;
        break;
      }
      case "gateway":
      case "syn":
        i = first(conn, (j) => sentBy(step.from)(j) && isSyn(a.summaries[j]));
        if (i !== undefined) {
          lastSyn = i;
          const to = a.hostOf(a.summaries[i].dstMac);
          if (step.leg === "syn" && to && to !== step.to) note = `The client framed it for ${to}'s MAC, not ${step.to}'s.`;
        }
        break;
      case "forward":
        i = first(conn, (j) => sentBy(step.from)(j) && isSyn(a.summaries[j]), (j) => a.port(a.log.frames[j].port).role === "director" && isSyn(a.summaries[j]));
        if (i !== undefined) {
          lastSyn = i;
          const to = a.hostOf(a.summaries[i].dstMac);
          if (to && to !== step.to) note = `The kernel sent this connection to ${to} (the walk's prediction for the first connection: ${step.to}).`;
        }
        break;
      case "deliver": {
        // Nothing new on the wire: what arrived, and the answer that proves it was taken.
        const answered = conn.some((j) => isReplyTo(a.summaries[j], client) && from(j) === step.from);
        if (lastSyn !== undefined && answered) {
          const r = real(lastSyn, `${step.from} answered it: the packet was taken.`);
          previous = r.frame;
          return { ...step, real: { ...r, changed: [] } };
        }
        i = undefined;
        note = lastSyn === undefined ? "" : `${step.from} never answered: frame ${lastSyn + 1} reached it, and nothing came back.`;
        break;
      }
      case "reply":
      case "reply-routed":
        i = first(conn, (j) => sentBy(step.from)(j) && isReplyTo(a.summaries[j], client), (j) => isReplyTo(a.summaries[j], client));
        if (i !== undefined && from(i) !== step.from) note = `The answer left from ${from(i)}'s port, not ${step.from}'s.`;
        break;
      default:
        return step;
    }
    if (i === undefined) {
      broken = true;
      const checks = failedChecks(report, service);
      return { ...step, real: { missing: true, broken: true, note: note || `No such frame was captured on ${step.from}'s port.`, checks } };
    }
    const r = real(i, note);
    const changed = previous ? Object.keys(r.frame).filter((k) => k !== "what" && r.frame[k] !== previous[k]) : [];
    // On the wire the director's copy also carries the director's own MAC as its source: it sends the frame itself.
    if (step.leg === "forward" && changed.includes("eth_dst") && !changed.includes("ip_src") && !changed.includes("ip_dst")) {
      r.note = [r.note, `The IP packet is the client's, unchanged; the frame is new: to ${a.hostOf(r.frame.eth_dst) || "the real server"}'s MAC, from the director's own.`].filter(Boolean).join(" ");
    }
    previous = r.frame;
    return { ...step, real: { ...r, changed } };
  });
}
