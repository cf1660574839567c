// The API reference, drawn from /openapi.json with plain DOM (FastAPI's Swagger UI needs a CDN).
"use strict";

function el(tag, text, parent) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function resolve(spec, schema) {
  while (schema && schema.$ref) {
    schema = schema.$ref.replace("#/", "").split("/").reduce((o, k) => o[k], spec);
  }
  return schema || {};
}

function typeOf(spec, s) {
  s = resolve(spec, s);
  if (s.anyOf) return s.anyOf.map((x) => typeOf(spec, x)).join(" | ");
  if (s.type === "array") return typeOf(spec, s.items) + "[]";
  return s.type || s.format || "object";
}

document.addEventListener("DOMContentLoaded", async () => {
  const main = document.getElementById("api");
  const spec = await (await fetch("/openapi.json")).json();
  main.textContent = "";
  el("p", spec.info.description || "", main);
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const card = el("section", undefined, main);
      card.className = "card";
      el("h2", `${method.toUpperCase()} ${path}`, card);
      el("p", op.summary || "", card);
      const content = op.requestBody && op.requestBody.content;
      if (!content) continue;
      for (const [kind, media] of Object.entries(content)) {
        el("h3", `Body (${kind})`, card);
        const props = resolve(spec, media.schema).properties || {};
        const dl = el("dl", undefined, card);
        for (const [name, prop] of Object.entries(props)) {
          el("dt", name, dl);
          el("dd", typeOf(spec, prop), dl);
          el("dd", resolve(spec, prop).description || prop.description || "", dl);
        }
      }
    }
  }
});
