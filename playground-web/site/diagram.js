// The topology diagram: the lab plan the core returns, drawn as SVG. Every
// name and address is text in a <text> node (see dom.js).
import { h, svg } from "./dom.js";

export const PROTOCOLS = { 0: "any", 6: "tcp", 17: "udp", 132: "sctp" };
// Monospace advance at the diagram's 12px: what decides when a line is cut.
const CHAR_WIDTH = 7.3;
// A production director (an `ipvsadm -S` dump of a thousand VIPs) stays
// readable, and quick to draw, at every keystroke: a box shows at most
// MAX_LINES lines and the diagram at most MAX_SERVERS real servers. The rest
// are counted, and listed in the tooltip of the line or box that counts them.
const MAX_LINES = 12;
const MAX_SERVERS = 24;

/** A box's lines, the ones past MAX_LINES counted on the last. */
function capLines(lines) {
  if (lines.length <= MAX_LINES) return lines;
  const rest = lines.slice(MAX_LINES - 1);
  return [...lines.slice(0, MAX_LINES - 1), { text: `… and ${rest.length} more`, cls: "more", title: rest.map((l) => l.text).join("\n") }];
}

/** The real servers drawn: the selected one and those with findings first, then the plan's order. */
function shownServers(servers, problems, selectedNode) {
  if (servers.length <= MAX_SERVERS) return { shown: servers, hidden: [] };
  const keep = new Set(servers.filter((s) => s.name === selectedNode || problems.has(s.name)).slice(0, MAX_SERVERS - 1));
  for (const s of servers) {
    if (keep.size >= MAX_SERVERS - 1) break;
    keep.add(s);
  }
  return { shown: servers.filter((s) => keep.has(s)), hidden: servers.filter((s) => !keep.has(s)) };
}

// The lines one host's box shows: its own addresses, every VIP it holds, and
// on a director the IPVS services and marking rules.
function hostLines(host, plan) {
  const lines = [];
  const outside = host.outside_interfaces || [];
  const own = host.addresses.filter((a) => !a.vip);
  for (const a of own) lines.push({ text: `${a.device} ${a.address}/${a.prefix}${outside.includes(a.device) ? " outside" : ""}` });
  if (!own.length) lines.push({ text: host.interface });
  const vips = host.addresses.filter((a) => a.vip);
  for (const v of vips) lines.push({ text: `VIP ${v.address}/${v.prefix} ${v.device}${v.deprecated ? " deprecated" : ""}`, cls: "vip", vip: v.address });
  if (host.role === "real_server") {
    if (!vips.length) lines.push({ text: "no VIP on lo" });
    lines.push({ text: `listens ${host.listeners.map((l) => `${l.port}/${l.kind}`).join(" ") || "no listener"}` });
  }
  if (host.role === "director") {
    // One line per VIP: the services it carries (a fwmark service has no VIP of its own).
    const groups = new Map();
    for (const s of plan.services) {
      const fwmark = s.fwmark !== 0;
      const key = fwmark || !plan.vips ? "" : s.address;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(fwmark ? `fwmark/${s.fwmark}` : `${PROTOCOLS[s.protocol] || s.protocol}/${s.port}`);
    }
    for (const [vip, names] of groups) lines.push({ text: `IPVS${vip ? ` ${vip}` : ""}: ${names.join(", ")}` });
    for (const m of plan.marks || []) {
      const host = m.prefix === (m.destination.includes(":") ? 128 : 32);
      const ports = m.ports.length ? ` ${m.ports.join(",")}` : "";
      lines.push({ text: `marks: ${m.mark} → ${m.destination}${host ? "" : `/${m.prefix}`} ${PROTOCOLS[m.protocol] || m.protocol}${ports}`, cls: "mark" });
    }
  }
  return lines;
}

// A line longer than the box keeps its start and end around an ellipsis
// (an address's network and host parts); the full text stays in a <title>.
function shorten(text, max) {
  if (text.length <= max) return text;
  const head = Math.ceil((max - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (max - 1 - head))}`;
}

/** Draws the lab plan of `analysis` into `box`, `selectedNode` highlighted. */
export function drawTopology(box, analysis, selectedNode) {
  const plan = analysis && analysis.plan;
  if (!plan) {
    box.replaceChildren(h("p", { class: "muted" }, "Fix the errors above to see the topology."));
    return;
  }
  const problems = new Set(analysis.diagnostics.filter((d) => d.node && d.severity !== "info").map((d) => d.node));
  const router = plan.hosts.find((host) => host.role === "router");
  // Behind a router the client sits on its own link, above the router.
  const outside = router ? plan.hosts.filter((host) => host.outside) : [];
  const upper = plan.hosts.filter((host) => host.role !== "real_server" && !outside.includes(host));
  upper.sort((a, b) => (b.role === "router") - (a.role === "router"));
  const { shown, hidden } = shownServers(
    plan.hosts.filter((host) => host.role === "real_server"),
    problems,
    selectedNode,
  );
  // The real servers not drawn are one box that counts them.
  const more = hidden.length ? [{ name: "", role: "more", hidden }] : [];
  const servers = [...shown, ...more];
  // Real servers take two rows when there are many, the second between the first's boxes.
  const columns = Math.max(2, upper.length, outside.length, Math.min(servers.length, Math.max(5, Math.ceil((servers.length + 1) / 2))));
  const lower = [servers.slice(0, columns), servers.slice(columns)].filter((row) => row.length);
  const lines = new Map([...upper, ...outside, ...shown].map((host) => [host.name, capLines(hostLines(host, plan))]));
  if (hidden.length) lines.set("", [{ text: `${hidden.length} real servers not drawn`, title: hidden.map((host) => host.name).join("\n") }]);
  const longest = Math.max(0, ...[...lines.values()].flat().map((l) => l.text.length));
  const nodeWidth = Math.min(330, Math.max(220, Math.ceil(longest * CHAR_WIDTH) + 20));
  const maxChars = Math.floor((nodeWidth - 20) / CHAR_WIDTH);
  const gap = 22, lineHeight = 18;
  const width = columns * (nodeWidth + gap) + gap;
  const rowHeight = (row) => 36 + lineHeight * Math.max(1, ...row.map((host) => lines.get(host.name).length));
  const columnX = (column) => gap + column * (nodeWidth + gap);

  const node = (host, x, y, height, link) => {
    if (host.role === "more") {
      const [line] = lines.get("");
      return svg(
        "g",
        { class: "node more", "data-testid": "more-servers", "data-count": hidden.length },
        link,
        svg("rect", { x, y, width: nodeWidth, height }),
        svg("text", { x: x + 10, y: y + 20, class: "title" }, `… and ${hidden.length} more`, svg("title", {}, line.title)),
        svg("text", { x: x + 10, y: y + 38 }, line.text),
      );
    }
    const cls = ["node", host.role.replace("_", "-"), problems.has(host.name) ? "problem" : "", selectedNode === host.name ? "highlight" : ""].join(" ");
    const text = (dy, { text, cls, vip, title }) => {
      const shown = shorten(text, maxChars);
      const tooltip = title || (shown !== text ? text : null);
      return svg("text", { x: x + 10, y: y + dy, class: cls, "data-vip": vip }, shown, tooltip && svg("title", {}, tooltip));
    };
    return svg(
      "g",
      { class: cls, "data-testid": "node", "data-node": host.name, "data-role": host.role },
      link,
      svg("rect", { x, y, width: nodeWidth, height }),
      svg("text", { x: x + 10, y: y + 20, class: "title" }, `${host.name} (${host.role.replace("_", " ")})`),
      lines.get(host.name).map((l, i) => text(38 + i * lineHeight, l)),
    );
  };

  const drawn = [];
  let y = 20;
  const routerX = columnX(0) + nodeWidth / 2;
  if (outside.length) {
    const height = rowHeight(outside);
    outside.forEach((host, i) => {
      const x = columnX(i);
      const link = svg("line", { class: "link outside-link", x1: x + nodeWidth / 2, y1: y + height, x2: routerX, y2: y + height + 40 });
      drawn.push(node(host, x, y, height, link));
    });
    drawn.push(svg("text", { x: routerX + 8, y: y + height + 24, class: "muted-label" }, "outside link"));
    y += height + 40;
  }
  const upperHeight = rowHeight(upper);
  const busY = y + upperHeight + 30;
  upper.forEach((host, i) => {
    const x = columnX(i);
    drawn.push(node(host, x, y, upperHeight, svg("line", { class: "link", x1: x + nodeWidth / 2, y1: y + upperHeight, x2: x + nodeWidth / 2, y2: busY })));
  });
  y = busY + 30;
  lower.forEach((row, r) => {
    const height = rowHeight(row);
    row.forEach((host, i) => {
      const x = columnX(i + r / 2);
      drawn.push(node(host, x, y, height, svg("line", { class: "link", x1: x + nodeWidth / 2, y1: y, x2: x + nodeWidth / 2, y2: busY })));
    });
    y += height + 24;
  });
  // An ipvsadm dump or a keepalived.conf does not name the LAN.
  const lan = analysis.lan;
  const subnet = lan ? [lan.subnet].flat().join(", ") : "";
  const summary = router ? "the client behind a router; the router, director and real servers on one LAN" : "client, director and real servers on one LAN";
  box.replaceChildren(
    svg(
      "svg",
      { viewBox: `0 0 ${width} ${y}`, role: "img", "aria-label": "Topology diagram" },
      svg("title", {}, summary),
      svg("line", { class: "bus", x1: gap / 2, y1: busY, x2: width - gap / 2, y2: busY }),
      svg("text", { x: gap, y: busY - 6, class: "lan" }, subnet ? `LAN ${subnet}` : "LAN"),
      drawn,
    ),
  );
}

