/* Starts the page's first API requests at once, while plotly.js is still loading and compiling:
 * the boot object lists them; Atlas.getJSON() picks each answer up once. */
"use strict";

(() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const urls = Array.isArray(boot.prefetch) ? boot.prefetch : [];
  window.AtlasPrefetch = new Map(urls.map((url) => [url,
    fetch(url, {cache: "no-cache", headers: {Accept: "application/json"}})]));
})();
