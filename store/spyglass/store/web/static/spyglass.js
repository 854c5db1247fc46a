// Spyglass trace store UI: progressive enhancement over server-rendered pages. Hand-written, no build step.
// Data from the store is untrusted: it only ever reaches the DOM through textContent, never innerHTML.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function toast(message) {
    const el = $(".toast");
    if (!el) return;
    el.textContent = message;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 1600);
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) throw new Error(body && body.error ? body.error : "HTTP " + response.status);
    return body;
  }

  // Put a large text into a <pre> without freezing the page: the browser lays out one text node,
  // which is fast; building markup per line is what stalls other trace viewers.
  function fill(pre, text) {
    pre.textContent = text;
    pre.removeAttribute("aria-busy");
  }

  // --- keyboard navigation through lists -------------------------------------------------------------
  function isTyping(target) {
    return target && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName));
  }

  function setupKeynav(table) {
    const rows = $$("tbody tr[data-href]", table);
    if (!rows.length) return;
    rows.forEach((row, i) => {
      row.tabIndex = i === 0 ? 0 : -1;
      row.setAttribute("aria-rowindex", String(i + 1));
      row.addEventListener("click", (event) => {
        if (event.target.closest("a, button, input, select") || event.metaKey || event.ctrlKey || event.shiftKey) return;
        window.location.assign(row.dataset.href);
      });
      row.addEventListener("focus", () => {
        rows.forEach((r) => { r.tabIndex = -1; r.classList.remove("selected"); });
        row.tabIndex = 0;
        row.classList.add("selected");
      });
    });
    const move = (delta) => {
      const current = rows.indexOf(document.activeElement);
      const next = current < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, current + delta));
      rows[next].focus();
      rows[next].scrollIntoView({ block: "nearest" });
    };
    document.addEventListener("keydown", (event) => {
      if (isTyping(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
      const inRow = rows.includes(document.activeElement);
      if (event.key === "j" || (event.key === "ArrowDown" && inRow)) { move(1); event.preventDefault(); }
      else if (event.key === "k" || (event.key === "ArrowUp" && inRow)) { move(-1); event.preventDefault(); }
      else if ((event.key === "Enter" || event.key === "o") && inRow) {
        window.location.assign(document.activeElement.dataset.href);
        event.preventDefault();
      }
    });
  }

  // On a trace: n / p move between span panels.
  function setupSpanKeys() {
    const panels = $$("section.span.panel");
    if (!panels.length) return;
    panels.forEach((panel) => { panel.tabIndex = -1; });
    document.addEventListener("keydown", (event) => {
      if (isTyping(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key !== "n" && event.key !== "p") return;
      const current = panels.findIndex((panel) => panel.contains(document.activeElement));
      const next = event.key === "n" ? Math.min(current + 1, panels.length - 1) : Math.max(current - 1, 0);
      panels[next].focus();
      panels[next].scrollIntoView({ block: "start" });
      history.replaceState(null, "", "#" + panels[next].id);
      event.preventDefault();
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && !isTyping(event.target)) {
      const search = $("#f-q");
      if (search) { search.focus(); search.select(); event.preventDefault(); }
    } else if (event.key === "Escape" && isTyping(event.target)) {
      event.target.blur();
    }
  });

  // --- copy buttons ---------------------------------------------------------------------------------
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      // Clipboard API refused (permissions, plain http on a LAN address): fall back to a selection.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "sr";
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
      area.remove();
      return ok;
    }
  }

  function setupCopy(button) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const ok = await copyText(source.textContent);
      toast(ok ? "Copied" : "Copy failed: select the text instead");
    });
  }

  // --- lazy values ------------------------------------------------------------------------------------
  const spanCache = new Map();
  function spanJSON(url) {
    if (!spanCache.has(url)) spanCache.set(url, getJSON(url));
    return spanCache.get(url);
  }

  async function loadJSONInto(pre) {
    if (pre.dataset.loaded) return;
    pre.dataset.loaded = "1";
    try {
      const data = await spanJSON(pre.dataset.jsonSrc);
      fill(pre, JSON.stringify(data.span, null, 2));
    } catch (error) {
      fill(pre, "Could not load: " + error.message);
      delete pre.dataset.loaded;
    }
  }

  function setupViewToggle(panel) {
    const buttons = $$("[data-toggle-view]", panel);
    buttons.forEach((button) => {
      button.addEventListener("click", () => {
        const view = button.dataset.toggleView;
        panel.dataset.view = view;
        buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
        $(".view-pretty", panel).hidden = view !== "pretty";
        $(".view-json", panel).hidden = view !== "json";
        if (view === "json") loadJSONInto($(".view-json pre", panel));
      });
    });
  }

  function setupMore(button) {
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.more);
      button.disabled = true;
      button.textContent = "Loading…";
      try {
        const url = button.dataset.src.replace(/\.json$/, "/part.json") + "?path=" + encodeURIComponent(button.dataset.path);
        const data = await getJSON(url);
        fill(target, data.text);
        button.remove();
      } catch (error) {
        button.disabled = false;
        button.textContent = "Retry: " + error.message;
      }
    });
  }

  function setupChunks(button) {
    button.addEventListener("click", () => {
      const box = document.getElementById(button.getAttribute("aria-controls"));
      const open = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", String(open));
      box.hidden = !open;
    });
  }

  // --- add to dataset --------------------------------------------------------------------------------
  function setupDatasetForm(form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = $(".form-status", form);
      // Read attributes, not form.dataset: a field named "dataset" would shadow it (DOM clobbering).
      const name = form.elements.namedItem("dataset_name").value.trim();
      status.className = "form-status small";
      status.textContent = "Adding…";
      try {
        const response = await fetch(form.action, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({
            dataset: name,
            span_id: form.getAttribute("data-span-id"),
            trace_id: form.getAttribute("data-trace-id"),
          }),
        });
        const body = await response.json();
        if (!response.ok) throw new Error(body && body.error ? body.error : "HTTP " + response.status);
        status.classList.add("ok");
        status.textContent = "Added to " + body.dataset + " (" + body.count + " items)";
        const list = document.getElementById("datasets-list");
        if (list && !$$("option", list).some((o) => o.value === body.dataset)) {
          const option = document.createElement("option");
          option.value = body.dataset;
          list.appendChild(option);
        }
      } catch (error) {
        status.classList.add("bad");
        status.textContent = "Not added: " + error.message;
      }
    });
  }

  // --- summary cards, charts and filter options, loaded after the page ------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function svgEl(name, attrs, parent) {
    const el = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
    if (parent) parent.appendChild(el);
    return el;
  }

  // Draws the geometry the server computed (spyglass.store.web._charts): the same drawing as the
  // chart macro in _macros.html, here for charts that arrive after the page.
  function drawChart(figure, c) {
    figure.replaceChildren();
    const caption = document.createElement("figcaption");
    caption.textContent = c.label + " ";
    if (c.max) {
      const max = document.createElement("span");
      max.className = "muted";
      max.textContent = "max " + c.max;
      caption.appendChild(max);
    }
    figure.appendChild(caption);
    if (c.empty) {
      const p = document.createElement("p");
      p.className = "muted empty-chart";
      p.textContent = "No data in this range.";
      figure.appendChild(p);
      return;
    }
    const svg = svgEl("svg", { viewBox: "0 0 " + c.width + " " + c.height, preserveAspectRatio: "none", role: "img", "aria-label": c.label }, figure);
    svgEl("line", { class: "axis", x1: 0, y1: c.height - 4, x2: c.width, y2: c.height - 4 }, svg);
    const titled = (el, text) => { svgEl("title", {}, el).textContent = text; };
    if (c.kind === "bar") {
      c.bars.forEach((b) => titled(svgEl("rect", { class: "bar", x: b.x, y: b.y, width: b.w, height: b.h }, svg), b.title));
    } else {
      // Highest percentile first, so the lower lines stay visible where they meet it.
      c.lines.slice().reverse().forEach((l) => {
        svgEl("polyline", { class: "line line-" + l.series, points: l.points }, svg);
        l.dots.forEach((d) => titled(svgEl("circle", { class: "dot line-" + l.series, cx: d.x, cy: d.y, r: 2.5 }, svg), d.title));
      });
    }
    const axis = document.createElement("div");
    axis.className = "chart-x";
    const first = document.createElement("span");
    first.textContent = c.first;
    axis.appendChild(first);
    if (c.kind === "line") {
      const legend = document.createElement("span");
      legend.className = "legend";
      c.lines.forEach((l) => {
        const key = document.createElement("i");
        key.className = "key line-" + l.series;
        legend.appendChild(key);
        legend.appendChild(document.createTextNode(l.name + " "));
      });
      axis.appendChild(legend);
    }
    const last = document.createElement("span");
    last.textContent = c.last;
    axis.appendChild(last);
    figure.appendChild(axis);
  }

  async function loadSummary(section) {
    try {
      const data = await getJSON(section.dataset.summary);
      for (const [key, text] of Object.entries(data.text)) {
        const el = $('[data-metric="' + key + '"]', section);
        if (el) el.textContent = text;
      }
      const failure = $('[data-card="failure"]', section);
      if (failure) failure.classList.toggle("card-bad", data.summary.failure_rate > 0);
      for (const [name, chart] of Object.entries(data.charts)) {
        const figure = $('figure[data-chart="' + name + '"]');
        if (figure) drawChart(figure, chart);
      }
    } catch (error) {
      $$("[data-metric]", section).forEach((el) => { el.textContent = "—"; });
      $$("figure[data-chart] .empty-chart").forEach((el) => { el.textContent = "Could not load: " + error.message; });
    } finally {
      section.removeAttribute("aria-busy");
    }
  }

  async function loadFacets(form) {
    try {
      const data = await getJSON(form.dataset.facets);
      $$("datalist[data-facet]", form).forEach((list) => {
        (data.options[list.dataset.facet] || []).forEach((value) => {
          const option = document.createElement("option");
          option.value = value;
          list.appendChild(option);
        });
      });
    } catch (_) {
      // Suggestions are a convenience: the fields still take any value.
    }
  }

  function init() {
    $$("[data-summary]").forEach(loadSummary);
    $$("form[data-facets]").forEach(loadFacets);
    $$("table[data-keynav]").forEach(setupKeynav);
    setupSpanKeys();
    $$("button[data-copy]").forEach(setupCopy);
    $$(".llm").forEach(setupViewToggle);
    $$("button[data-more]").forEach(setupMore);
    $$("button[data-toggle-chunks]").forEach(setupChunks);
    $$("form[data-add-dataset]").forEach(setupDatasetForm);
    $$("details").forEach((details) => {
      const pre = $("pre[data-lazy-details]", details);
      if (pre) details.addEventListener("toggle", () => { if (details.open) loadJSONInto(pre); });
    });
    // Empty filter fields would clutter the shared URL: leave them out of the query string.
    $$("form.filters").forEach((form) => {
      form.addEventListener("submit", () => {
        $$("input, select", form).forEach((field) => { if (!field.value) field.disabled = true; });
      });
    });
    // Coming back with the Back button restores the page as it was left: enable those fields again.
    window.addEventListener("pageshow", () => {
      $$("form.filters [disabled]").forEach((field) => { field.disabled = false; });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
