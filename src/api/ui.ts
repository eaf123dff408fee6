/**
 * /ui: a small dashboard (pools, nodes by state, queue, cost today against always-on, each pool's last hours),
 * every chart drawn by Chart.js from the API's JSON.
 * The page holds no data: the browser asks the API for everything with the key the user gives (kept in the
 * tab's sessionStorage, or passed once as `#key=` in the address, which never reaches the server), so the
 * same auth applies as for any client. Charts are drawn by Chart.js, served from the installed package.
 */
import path from 'node:path';
import { Router } from 'express';
import { TIMELINE_MARK_STYLE } from '../domain/charts';

const UI_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>zeropool</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <style>
    body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
    header { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
    h1 { font-size: 1.3rem; margin: 0; }
    #status { color: #666; }
    #error { color: #b00020; }
    .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; margin: 1rem 0; }
    .pool { border: 1px solid #ddd; border-radius: 6px; padding: 0.75rem 1rem; margin: 0.75rem 0; }
    .pool h2 { font-size: 1.05rem; margin: 0 0 0.3rem; }
    .pool canvas { max-width: 100%; }
    .figures { color: #444; }
  </style>
</head>
<body>
  <header>
    <h1>zeropool</h1>
    <form id="key-form"><input id="key" type="password" placeholder="API key" size="40" autocomplete="off"> <button>Use key</button></form>
    <span id="status">no key yet</span>
    <span id="error"></span>
  </header>
  <div class="charts">
    <div><canvas id="nodes-chart" aria-label="nodes by state per pool"></canvas></div>
    <div><canvas id="cost-chart" aria-label="cost today against always-on per pool"></canvas></div>
  </div>
  <div id="pools"></div>
  <script src="/ui/chart.umd.min.js"></script>
  <script>
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('key');
    if (fromHash) { sessionStorage.setItem('zeropool-key', fromHash); history.replaceState(null, '', location.pathname); }
    let key = sessionStorage.getItem('zeropool-key') || '';
    const charts = {};
    const timelineCharts = [];
    const MARKS = ${JSON.stringify(TIMELINE_MARK_STYLE)};
    const STATES = ['provisioning', 'ready', 'terminating', 'terminate_failed', 'stopping', 'stopped', 'sleeping'];
    const COLOURS = {
      provisioning: '#f0ad4e', ready: '#2ca02c', terminating: '#999999', terminate_failed: '#d62728', stopping: '#6baed6', stopped: '#3182bd',
    };

    document.getElementById('key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      key = document.getElementById('key').value.trim();
      sessionStorage.setItem('zeropool-key', key);
      refresh();
    });

    async function api(path, as = 'json') {
      const res = await fetch(path, { headers: { authorization: 'Bearer ' + key } });
      if (!res.ok) {
        let message = res.status + ' ' + res.statusText;
        try { message = (await res.json()).error.message; } catch {}
        throw Object.assign(new Error(path + ': ' + message), { status: res.status });
      }
      return as === 'json' ? res.json() : res.text();
    }

    function chart(id, config) {
      if (charts[id]) { charts[id].data = config.data; charts[id].update(); return; }
      charts[id] = new Chart(document.getElementById(id), config);
    }

    // Cents hide a young pool's cost: below a dollar, four decimals.
    const usd = (v) => '$' + (v < 1 ? v.toFixed(4) : v.toFixed(2));

    function text(tag, content, attrs = {}) {
      const el = document.createElement(tag);
      el.textContent = content;
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      return el;
    }

    // The keep-alive's plan in force, as a sentence: how long idle nodes stay, what they go down to, and why.
    function plan(k) {
      const w = k.windows;
      const s = (ms) => Math.round(ms / 1000) + ' s';
      const keep = w.mode === 'prewarm'
        ? 'idle nodes go down at once and are pre-warmed ' + s(w.prewarmMs) + ' into the gap, kept ' + s(w.keepAliveMs) + ' more'
        : 'idle nodes are kept ' + s(w.keepAliveMs);
      return 'keep-alive (' + k.mode + '): ' + keep + ', then ' + (w.down || 'terminated') + ' — ' + w.reason;
    }

    async function refresh() {
      if (!key) return;
      document.getElementById('error').textContent = '';
      document.getElementById('status').textContent = 'loading…';
      try {
        const today = new Date(); today.setUTCHours(0, 0, 0, 0);
        const [list, analytics] = await Promise.all([api('/v1/pools'), api('/v1/analytics?from=' + today.toISOString())]);
        const views = await Promise.all(list.pools.map((p) => api('/v1/pools/' + p.id).catch((e) => ({ id: p.id, error: e.message }))));
        const money = Object.fromEntries(analytics.pools.map((p) => [p.pool, p]));
        const names = views.map((v) => v.id);
        chart('nodes-chart', {
          type: 'bar',
          data: { labels: names, datasets: STATES.map((s) => ({ label: s, backgroundColor: COLOURS[s], data: views.map((v) => (v.nodes || []).filter((n) => n.state === s).length) })) },
          options: { plugins: { title: { display: true, text: 'Nodes by state' } }, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
        });
        chart('cost-chart', {
          type: 'bar',
          data: { labels: names, datasets: [
            { label: 'cost today (USD)', backgroundColor: '#1f77b4', data: names.map((n) => money[n]?.cost_usd ?? 0) },
            { label: 'always-on today (USD)', backgroundColor: '#cccccc', data: names.map((n) => money[n]?.always_on_cost_usd ?? 0) },
          ] },
          options: { plugins: { title: { display: true, text: 'Cost today against always-on' } }, scales: { y: { beginAtZero: true } } },
        });
        const container = document.getElementById('pools');
        const sections = await Promise.all(views.map(async (v) => {
          const section = document.createElement('section');
          section.className = 'pool';
          section.dataset.pool = v.id;
          section.append(text('h2', v.id + (v.phase ? ' · ' + v.phase : '')));
          if (v.error) { section.append(text('p', v.error, { class: 'figures' })); return section; }
          const m = money[v.id];
          section.append(text('p', [
            v.nodes.length + ' node(s)', v.queued + ' queued', v.running + ' running', 'model ' + v.config.model,
            m ? 'today ' + usd(m.cost_usd) + ' vs always-on ' + usd(m.always_on_cost_usd) + ' (saved ' + usd(Math.max(0, m.always_on_cost_usd - m.cost_usd)) + ')' : 'no cost today',
          ].join(' · '), { class: 'figures' }));
          section.append(text('p', plan(v.keepAlive), { class: 'figures plan' }));
          const timeline = await api('/v1/pools/' + v.id + '/timeline').catch(() => undefined);
          if (timeline) {
            const canvas = document.createElement('canvas');
            canvas.id = 'timeline-' + v.id;
            canvas.height = 90;
            section.append(canvas);
            // Points are [seconds since the window's start, nodes billed, requests running]. The window fits the
            // pool's activity; x counts back from now, in minutes up to three hours (as the SVG does).
            const span = (Date.parse(timeline.to) - Date.parse(timeline.from)) / 1000;
            const unit = span <= 3 * 3600 ? 60 : 3600;
            const ago = (s) => (s - span) / unit;
            const series = (i) => [...timeline.points.map((p) => ({ x: ago(p[0]), y: p[i] })), { x: 0, y: timeline.points.at(-1)?.[i] ?? 0 }];
            const marks = Object.entries(MARKS).map(([kind, style]) => ({
              type: 'scatter', label: style.label, pointStyle: 'triangle', pointRadius: 6, backgroundColor: style.colour, borderColor: style.colour,
              data: timeline.marks.filter((mk) => mk.kind === kind).map((mk) => ({ x: ago(mk.at), y: 0, detail: mk.detail })),
            })).filter((d) => d.data.length > 0);
            const label = span <= 3 * 3600 ? Math.round(span / 60) + ' min' : (span / 3600).toFixed(1) + ' h';
            timelineCharts.push(() => chart(canvas.id, {
              type: 'line',
              data: { datasets: [
                { label: 'nodes billed', data: series(1), stepped: true, borderColor: '#d62728', pointRadius: 0 },
                { label: 'requests running', data: series(2), stepped: true, borderColor: '#999999', pointRadius: 0 },
                ...marks,
              ] },
              options: {
                animation: false,
                plugins: {
                  title: { display: true, text: 'last ' + label + ': ' + timeline.requests + ' requests, ' + timeline.nodeHours.toFixed(2) + ' node-hours, ' + usd(timeline.costUsd) },
                  tooltip: { callbacks: { label: (c) => c.dataset.label + (c.raw.detail ? ': ' + c.raw.detail : ': ' + c.raw.y) } },
                },
                scales: { x: { type: 'linear', min: -span / unit, max: 0, title: { display: true, text: unit === 60 ? 'minutes ago' : 'hours ago' } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
              },
            }));
          }
          return section;
        }));
        for (const id of Object.keys(charts)) if (id.startsWith('timeline-')) { charts[id].destroy(); delete charts[id]; }
        container.replaceChildren(...sections);
        for (const draw of timelineCharts.splice(0)) draw();
        document.getElementById('status').textContent = 'loaded ' + views.length + ' pool(s) at ' + new Date().toLocaleTimeString();
      } catch (e) {
        // One message: a refused key says so (and what to do), anything else says what failed.
        document.getElementById('status').textContent = '';
        document.getElementById('error').textContent = e.status === 401 ? 'this key was refused: enter a valid API key' : e.message;
      }
    }
    refresh();
    setInterval(refresh, 10000);
  </script>
</body>
</html>`;

export function uiRoutes(): Router {
  const router = Router();
  router.get(['/ui', '/ui/'], (_req, res) => {
    res.type('html').send(UI_PAGE);
  });
  // Only Chart.js's browser build, not the package folder.
  // The package exports no package.json: its main entry lies in dist/, next to the browser build.
  const chartFile = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js');
  router.get('/ui/chart.umd.min.js', (_req, res) => {
    res.type('application/javascript').sendFile(chartFile);
  });
  return router;
}
