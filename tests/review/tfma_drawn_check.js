(() => {
  const deep = (root, sel, out = []) => {
    root.querySelectorAll(sel).forEach(e => out.push(e));
    root.querySelectorAll('*').forEach(e => e.shadowRoot && deep(e.shadowRoot, sel, out));
    return out;
  };
  const text = n => n.nodeType === 3 ? n.nodeValue : (n.nodeName === 'STYLE' ? '' :
      (n.shadowRoot ? text(n.shadowRoot) : '') + Array.from(n.childNodes).map(text).join(' '));
  const box = e => { const r = e ? e.getBoundingClientRect() : {width: 0, height: 0}; return [Math.round(r.width), Math.round(r.height)]; };
  const charts = (host, hostTag) => deep(host.shadowRoot, 'google-chart')
      .filter(g => g.getRootNode().host && g.getRootNode().host.localName === hostTag)
      .map(g => { const div = g.shadowRoot && g.shadowRoot.getElementById('chartdiv');
                  const t = div && div.querySelector('table'), s = div && div.querySelector('svg');
                  return {drawn: g.drawn === true, rows: t ? t.rows.length : 0, box: box(t || s),
                          text: div ? text(div).replace(/\s+/g, ' ').trim() : ''}; });
  const sm = document.querySelector('tfma-nb-slicing-metrics');
  const ts = document.querySelector('tfma-nb-time-series');
  const smT = sm && sm.shadowRoot ? charts(sm, 'tfma-metrics-table') : [];
  const tsT = ts && ts.shadowRoot ? charts(ts, 'tfma-metrics-table') : [];
  const tsL = ts && ts.shadowRoot ? charts(ts, 'tfma-line-chart') : [];
  const drawnTable = (t, minRows, words) => !!t && t.drawn && t.rows >= minRows && t.box[0] > 0 && t.box[1] > 0
      && words.every(w => t.text.includes(w)) && /0\.\d{3}/.test(t.text);
  const slicing = {box: box(sm), table: smT[0] || null,
      ok: !!sm && box(sm)[1] > 0 && drawnTable(smT[0], 3, ['payment_type:Cash', 'payment_type:Credit Card', 'auc'])};
  const timeSeries = {box: box(ts), table: tsT[0] || null, lines: tsL,
      ok: !!ts && box(ts)[1] > 0 && drawnTable(tsT[0], 3, ['auc'])
          && tsL.length > 0 && tsL.every(l => l.drawn && l.box[0] > 0 && l.box[1] > 0)};
  return {ok: slicing.ok && timeSeries.ok, slicing, timeSeries};
})()
