// The page's one way to build markup. A share link can hold any text, and the
// core echoes that text in names and messages, so nothing here is ever parsed
// as markup: every node is built with h()/svg(), and every value lands in a
// text node or an attribute value.

const SVG_NS = "http://www.w3.org/2000/svg";

// Attributes: null/false leave one out, true sets it empty, `style` takes an
// object (CSSOM, which the page's CSP allows where a style attribute is not).
// Children: nodes, or anything else as text; arrays are flattened.
function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "style") Object.assign(el.style, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const h = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);
export const svg = (tag, attrs, ...children) => fill(document.createElementNS(SVG_NS, tag), attrs, children);
export const $ = (id) => document.getElementById(id);
