// Offline TEST STUB for Google Charts (https://www.gstatic.com/charts/loader.js cannot be
// reached here and Google Charts cannot legally be self-hosted). It implements just the API
// surface TFMA's bundled <google-chart> element uses: charts.load, DataTable,
// arrayToDataTable, DataView, ChartWrapper, events, and Table/LineChart/ColumnChart.
// Table -> real <table>; other chart types -> simple SVG polylines. Inject it before page
// scripts run (CDP Page.addScriptToEvaluateOnNewDocument). Never ship it to users.
(function () {
  if (window.google && window.google.charts) return;
  window.polymerSkipLoadingFontRoboto = true;  // no fonts.googleapis.com request
  const L = new WeakMap();
  const events = {
    addListener(t, n, f) { if (!L.has(t)) L.set(t, {}); (L.get(t)[n] = L.get(t)[n] || []).push(f); return {t, n, f}; },
    addOneTimeListener(t, n, f) { const h = events.addListener(t, n, (...a) => { events.removeListener(h); f(...a); }); return h; },
    removeListener(h) { const m = L.get(h.t); if (m && m[h.n]) m[h.n] = m[h.n].filter(x => x !== h.f); },
    trigger(t, n, a) { ((L.get(t) || {})[n] || []).slice().forEach(f => f(a)); },
  };
  const cellV = c => (c !== null && typeof c === 'object' && 'v' in c) ? c.v : c;
  class DataTable {
    constructor(j) {
      this.cols = ((j && j.cols) || []).map(c => Object.assign({}, c));
      this.rows = ((j && j.rows) || []).map(r => (r.c || r).map(x => x));
    }
    addColumn(t, label) { this.cols.push(typeof t === 'object' ? t : {type: t, label}); }
    addRows(rs) { if (typeof rs === 'number') rs = Array.from({length: rs}, () => []); rs.forEach(r => this.rows.push(r.slice())); }
    getNumberOfRows() { return this.rows.length; }
    getNumberOfColumns() { return this.cols.length; }
    getColumnLabel(i) { return this.cols[i].label || ''; }
    getColumnType(i) { return this.cols[i].type; }
    getColumnRole(i) { return this.cols[i].role || ''; }
    getValue(r, c) { return cellV(this.rows[r][c]); }
    getFormattedValue(r, c) { const x = this.rows[r][c]; return x && typeof x === 'object' && x.f != null ? String(x.f) : (x == null ? '' : String(cellV(x))); }
    sort(spec) {
      const s = (Array.isArray(spec) ? spec : [spec]).map(x => typeof x === 'number' ? {column: x} : x);
      this.rows.sort((a, b) => { for (const {column, desc} of s) { const x = cellV(a[column]), y = cellV(b[column]); if (x < y) return desc ? 1 : -1; if (x > y) return desc ? -1 : 1; } return 0; });
    }
  }
  function arrayToDataTable(a, firstRowIsData) {
    const head = firstRowIsData ? (a[0] || []).map((_, i) => 'C' + i) : (a[0] || []);
    const body = firstRowIsData ? a : a.slice(1);
    const cols = head.map((h, i) => typeof h === 'object' ? Object.assign({}, h)
        : {label: String(h), type: body.length && typeof cellV(body[0][i]) === 'number' ? 'number' : 'string'});
    return new DataTable({cols, rows: body});
  }
  class DataView extends DataTable {
    constructor(dt) { super({cols: dt.cols, rows: dt.rows}); this.src = dt; }
    setColumns(cs) {
      const src = this.src;
      this.cols = cs.map(c => typeof c === 'number' ? src.cols[c] : Object.assign({label: ''}, c));
      this.rows = src.rows.map(r => cs.map(c => typeof c === 'number' ? r[c]
          : {v: String(cellV(r[c.sourceColumn])), f: String(cellV(r[c.sourceColumn]))}));
    }
  }
  class Chart {
    constructor(el, type) { this.el = el; this.type = type; this.sel = []; }
    getSelection() { return this.sel; }
    setSelection(s) { this.sel = s || []; }
    clearChart() { this.el.innerHTML = ''; }
    draw(dt, opt) {
      opt = opt || {};
      if (this.type === 'Table') this.drawTable(dt, opt); else this.drawSvg(dt, opt);
      setTimeout(() => events.trigger(this, 'ready', {}), 0);
    }
    drawTable(dt, opt) {
      const esc = s => s.replace(/[&<>]/g, ch => ({'&': '&amp;', '<': '&lt;', '>': '&gt;'}[ch]));
      const n = opt.page === 'enable' ? (opt.pageSize || 10) : dt.getNumberOfRows();
      let h = '<table class="google-visualization-table-table" style="border-collapse:collapse;width:' + (opt.width || 'auto') + '"><thead><tr>';
      for (let c = 0; c < dt.getNumberOfColumns(); c++) h += '<th style="border:1px solid #ccc;padding:4px;background:#eee">' + esc(dt.getColumnLabel(c)) + '</th>';
      h += '</tr></thead><tbody>';
      for (let r = 0; r < Math.min(n, dt.getNumberOfRows()); r++) {
        h += '<tr>';
        for (let c = 0; c < dt.getNumberOfColumns(); c++) { const f = dt.getFormattedValue(r, c); h += '<td style="border:1px solid #ccc;padding:4px">' + (opt.allowHtml ? f : esc(f)) + '</td>'; }
        h += '</tr>';
      }
      this.el.innerHTML = h + '</tbody></table>';
    }
    drawSvg(dt, opt) {
      const W = opt.width || this.el.clientWidth || 400, H = opt.height || this.el.clientHeight || 200, nr = dt.getNumberOfRows();
      const series = [];
      for (let c = 1; c < dt.getNumberOfColumns(); c++) if (!dt.getColumnRole(c) && dt.getColumnType(c) === 'number') series.push(c);
      const ys = []; series.forEach(c => { for (let r = 0; r < nr; r++) { const v = +dt.getValue(r, c); if (isFinite(v)) ys.push(v); } });
      const lo = ys.length ? Math.min(...ys) : 0, hi = ys.length ? Math.max(...ys) : 1, X = r => 30 + (W - 40) * (nr > 1 ? r / (nr - 1) : 0.5), Y = v => H - 20 - (H - 40) * (v - lo) / (hi - lo || 1);
      let s = '<svg xmlns="http://www.w3.org/2000/svg" width="' + W + '" height="' + H + '"><rect width="100%" height="100%" fill="white"/><text x="4" y="14" font-size="11">' + this.type + ' (offline stub)</text>';
      s += '<line x1="30" y1="' + (H - 20) + '" x2="' + (W - 10) + '" y2="' + (H - 20) + '" stroke="#999"/>';
      series.forEach((c, k) => {
        const pts = []; for (let r = 0; r < nr; r++) pts.push(X(r).toFixed(1) + ',' + Y(+dt.getValue(r, c)).toFixed(1));
        s += '<polyline fill="none" stroke-width="2" stroke="' + ['#3366cc', '#dc3912', '#ff9900'][k % 3] + '" points="' + pts.join(' ') + '"/>';
        pts.forEach(p => { const [x, y] = p.split(','); s += '<circle cx="' + x + '" cy="' + y + '" r="3" fill="#3366cc"/>'; });
      });
      // TFMA's histogram highlighter walks Google's SVG layout: g[clip-path] > g,g + 3 sibling g's.
      s += '<g clip-path="url(#stub)"><g></g><g></g></g><g></g><g></g><g></g>';
      this.el.innerHTML = s + '</svg>';
    }
  }
  class ChartWrapper {
    constructor(spec) { this.c = spec.container; this.type = null; this.chart = null; this.dt = null; this.opt = {}; }
    setChartType(t) { this.type = t; this.chart = null; }
    getChart() { return this.chart; }
    setDataTable(d) { this.dt = d; }
    setOptions(o) { this.opt = o; }
    getContainer() { return this.c; }
    draw() {
      if (!this.chart) this.chart = new Chart(this.c, this.type);
      this.chart.draw(this.dt || new DataTable(), this.opt);
      setTimeout(() => events.trigger(this, 'ready', {}), 0);
    }
  }
  const viz = {DataTable, DataView, ChartWrapper, arrayToDataTable, events};
  ['Table', 'LineChart', 'ColumnChart', 'BarChart', 'ComboChart', 'BubbleChart', 'ScatterChart', 'AreaChart']
      .forEach(t => { viz[t] = class extends Chart { constructor(el) { super(el, t); } }; });
  window.google = {charts: {load: () => Promise.resolve(), setOnLoadCallback: f => Promise.resolve().then(f)}, visualization: viz};
})();
