/* The API, listed from the app's own OpenAPI schema (no Swagger UI: nothing is fetched from a CDN). */
"use strict";

(async () => {
  const {el, clear, getJSON} = Atlas;
  const list = document.getElementById("docs-list");
  try {
    const schema = await getJSON("/api/openapi.json");
    const campaigns = await getJSON("/api/campaigns").catch(() => ({campaigns: []}));
    const example = campaigns.campaigns.length ? campaigns.campaigns[0].name : null;
    const items = [];
    for (const [path, operations] of Object.entries(schema.paths)) {
      if (!path.startsWith("/api")) continue;
      for (const [method, op] of Object.entries(operations)) {
        const params = (op.parameters || []).map((p) => {
          const s = p.schema || {};
          const bits = [s.type || (s.anyOf ? s.anyOf.map((a) => a.type || a.enum).join(" | ") : ""),
            s.default !== undefined ? `default ${JSON.stringify(s.default)}` : "",
            s.minimum !== undefined ? `≥ ${s.minimum}` : "", s.maximum !== undefined ? `≤ ${s.maximum}` : ""].filter(Boolean);
          return el("li", {}, el("code", {text: p.name}), ` (${p.in}${p.required ? ", required" : ""}) ${bits.join(", ")}`,
            p.description ? ` — ${p.description}` : "");
        });
        const ok = op.responses && op.responses["200"] && op.responses["200"].content &&
          op.responses["200"].content["application/json"];
        const ref = ok && ok.schema && ok.schema.$ref ? ok.schema.$ref.split("/").pop() : null;
        const tryPath = path.includes("{evaluation_id}") ? null
          : path.includes("{name}") ? (example ? path.replace("{name}", encodeURIComponent(example)) : null) : path;
        items.push(el("div", {class: "endpoint"},
          el("span", {class: "method", text: method.toUpperCase()}),
          tryPath ? el("a", {class: "path", href: tryPath, text: path}) : el("span", {class: "path", text: path}),
          op.summary ? el("span", {class: "muted", text: ` — ${op.summary}`}) : "",
          op.description ? el("p", {class: "muted", text: op.description}) : "",
          params.length ? el("ul", {class: "params"}, params) : "",
          ref ? el("p", {class: "muted"}, "returns ", el("code", {text: ref})) : ""));
      }
    }
    clear(list, items);
  } catch (error) {
    clear(list, el("p", {class: "error-banner", text: String(error.message || error)}));
  }
})();
