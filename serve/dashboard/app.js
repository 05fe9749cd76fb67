// The hookshadow serve dashboard: Preact + htm, no build step, no network beyond this server.
import { h, render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);

/** The admin token: from `#token=...` once (then kept for the tab), or typed in. */
function initialToken() {
  const m = /token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('hookshadow-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname);
  }
  return sessionStorage.getItem('hookshadow-token') ?? '';
}

async function api(token, path, init = {}) {
  const res = await fetch(path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}) } });
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('json') ? await res.json() : await res.text();
  return { status: res.status, body };
}

const pct = (x) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);

function TokenForm({ onToken, error }) {
  const [value, setValue] = useState('');
  return html`<section>
    <h2>Admin token</h2>
    ${error && html`<p class="refusal">${error}</p>`}
    <form class="token" onSubmit=${(e) => (e.preventDefault(), onToken(value))}>
      <input data-testid="token-input" type="password" value=${value} onInput=${(e) => setValue(e.target.value)} placeholder="serve.admin_token" size="40" />
      <button type="submit">Open</button>
    </form>
  </section>`;
}

function Cards({ summary, flows }) {
  const today = summary?.days?.at(-1);
  return html`<div class="cards">
    <div class="card"><div class="muted">Deliveries today</div><div class="value" data-testid="card-deliveries">${today?.deliveries ?? 0}</div></div>
    <div class="card"><div class="muted">Divergence rate today</div><div class="value" data-testid="card-rate">${pct(today?.divergence_rate ?? 0)}</div></div>
    <div class="card"><div class="muted">Flow runs today</div><div class="value">${today?.flow_runs ?? 0}</div></div>
    <div class="card"><div class="muted">Dispatcher · queue</div><div class="value">${flows?.dispatcher ? 'running' : 'idle'} · ${flows?.queued ?? 0}</div></div>
  </div>`;
}

function Trend({ token, version }) {
  const [src, setSrc] = useState(null);
  useEffect(() => {
    api(token, '/api/summary/daily.svg?days=14').then((r) => r.status === 200 && setSrc(`data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(r.body)))}`));
  }, [token, version]);
  return html`<section class="chart"><h2>Daily trend (deliveries, divergence rate)</h2>${src ? html`<img data-testid="trend" alt="daily trend" src=${src} />` : html`<p class="muted">No data yet.</p>`}</section>`;
}

function Flows({ token, flows, onChanged }) {
  const [refusal, setRefusal] = useState(null);
  const [force, setForce] = useState(false);
  const flip = async (name, mode) => {
    const r = await api(token, `/api/flows/${encodeURIComponent(name)}/mode`, { method: 'PUT', body: JSON.stringify({ mode, force, who: 'dashboard' }) });
    if (r.status === 200) setRefusal(null);
    else setRefusal({ flow: name, mode, code: r.body.code, message: r.body.message, reasons: r.body.reasons ?? r.body.missing ?? [] });
    onChanged();
  };
  return html`<section>
    <h2>Flows</h2>
    ${refusal &&
    html`<div class="refusal" data-testid="refusal">
      <strong>${refusal.code}</strong>: ${refusal.flow} → ${refusal.mode} refused
      <ul>${refusal.reasons.map((r) => html`<li data-testid="refusal-reason">${r}</li>`)}</ul>
    </div>`}
    <table>
      <thead><tr><th>Flow</th><th>Mode</th><th>Runs</th><th>Divergence</th><th>Cutover readiness</th></tr></thead>
      <tbody>
        ${(flows?.flows ?? []).map(
          (f) => html`<tr data-testid=${`flow-${f.name}`}>
            <td><strong>${f.name}</strong><div class="muted">${f.description}</div></td>
            <td>
              <select data-testid=${`mode-${f.name}`} class=${`mode-${f.mode}`} value=${f.mode} onChange=${(e) => flip(f.name, e.target.value)}>
                ${['off', 'dry-run', 'live'].map((m) => html`<option value=${m} selected=${m === f.mode}>${m}</option>`)}
              </select>
            </td>
            <td>${f.deliveries}</td>
            <td>${pct(f.divergence_rate)}</td>
            <td class=${f.readiness.ready ? 'ready' : 'blocked'}>${f.readiness.ready ? 'ready' : html`<ul>${f.readiness.reasons.map((r) => html`<li>${r}</li>`)}</ul>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <label><input type="checkbox" data-testid="force" checked=${force} onChange=${(e) => setForce(e.target.checked)} /> force the next flip past the cutover gate (recorded in the history)</label>
  </section>`;
}

function Divergences({ token, version }) {
  const [list, setList] = useState([]);
  const [open, setOpen] = useState(null);
  useEffect(() => {
    api(token, '/flows/divergences?limit=20').then((r) => r.status === 200 && setList(r.body.deliveries));
  }, [token, version]);
  return html`<section>
    <h2>Divergences</h2>
    ${list.length === 0 && html`<p class="muted">None yet.</p>`}
    <table data-testid="divergences">
      <tbody>
        ${list.map(
          (d) => html`<tr>
            <td><button class="link" onClick=${() => setOpen(open?.delivery_id === d.delivery_id ? null : d)}>${d.delivery_id}</button></td>
            <td>${d.event}${d.action ? `.${d.action}` : ''}</td>
            <td>${d.divergences.map((x) => html`<div>${x.class}${x.flow ? ` · ${x.flow}` : ''}${x.expected_by ? ' (expected)' : ''}</div>`)}${d.duplicates.length > 0 && html`<div class="blocked">done twice: ${d.duplicates.length}</div>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${open &&
    html`<div data-testid="diff">
      <h2>${open.delivery_id}</h2>
      <div class="sides">
        <div><div class="muted">Legacy handler did</div><pre>${JSON.stringify(open.legacy, null, 2)}</pre></div>
        <div><div class="muted">Flows intended</div><pre>${JSON.stringify(open.runs.flatMap((r) => r.intents.map((i) => ({ flow: r.flow, mode: r.mode, ...i }))), null, 2)}</pre></div>
      </div>
      <table>
        <thead><tr><th>Class</th><th>Flow · node</th><th>Kind · target</th><th>Path</th><th>Legacy</th><th>Flow</th></tr></thead>
        <tbody>${open.divergences.map((x) => html`<tr><td>${x.class}</td><td>${x.flow ?? ''}${x.node_id ? ` · ${x.node_id}` : ''}</td><td>${x.kind} ${x.target}</td><td>${x.path ?? ''}</td><td><pre>${JSON.stringify(x.legacy_value)}</pre></td><td><pre>${JSON.stringify(x.flow_value)}</pre></td></tr>`)}</tbody>
      </table>
    </div>`}
  </section>`;
}

function Feed({ events }) {
  return html`<section><h2>Live feed</h2><ul class="feed" data-testid="feed">${events.map((e) => html`<li data-type=${e.type}><strong>${e.type}</strong> ${describe(e)}</li>`)}</ul></section>`;
}

function describe(e) {
  const d = e.data;
  switch (e.type) {
    case 'delivery':
      return `${d.delivery_id} ${d.source} ${d.event ?? ''}${d.action ? `.${d.action}` : ''} → legacy ${d.legacy_status ?? '–'}`;
    case 'flow-run':
      return `${d.flow} (${d.mode}) ${d.status}, ${d.intents} intent(s)${d.divergent ? ', divergent' : ''} · ${d.delivery_id}`;
    case 'divergence':
      return `${d.delivery_id}: ${d.unexpected} unexpected of ${d.divergences}${d.duplicates ? `, ${d.duplicates} done twice` : ''}`;
    case 'mode-change':
      return `${d.entry.flow ?? 'global'} ${d.entry.from} → ${d.entry.to} by ${d.entry.who}${d.entry.forced ? ' (forced)' : ''}`;
    default:
      return JSON.stringify(d).slice(0, 160);
  }
}

function App() {
  const [token, setToken] = useState(initialToken());
  const [error, setError] = useState(null);
  const [flows, setFlows] = useState(null);
  const [summary, setSummary] = useState(null);
  const [events, setEvents] = useState([]);
  const [version, setVersion] = useState(0);
  const refresh = useCallback(async () => {
    if (!token) return;
    const [f, s] = await Promise.all([api(token, '/api/flows'), api(token, '/api/summary/daily?days=14')]);
    if (f.status === 401) {
      sessionStorage.removeItem('hookshadow-token');
      setError('That token was refused.');
      setToken('');
      return;
    }
    setFlows(f.body);
    setSummary(s.body);
    setVersion((v) => v + 1);
  }, [token]);
  useEffect(() => void refresh(), [refresh]);
  useEffect(() => {
    if (!token) return undefined;
    const source = new EventSource(`/api/events?access_token=${encodeURIComponent(token)}`);
    let timer = null;
    const later = () => {
      timer ??= setTimeout(() => ((timer = null), refresh()), 500);
    };
    for (const type of ['delivery', 'flow-run', 'divergence', 'mode-change', 'daily-summary', 'queue-full']) {
      source.addEventListener(type, (m) => {
        setEvents((list) => [{ id: m.lastEventId, type, data: JSON.parse(m.data) }, ...list].slice(0, 100));
        if (type !== 'delivery') later();
      });
    }
    return () => source.close();
  }, [token, refresh]);
  if (!token) return html`<${TokenForm} error=${error} onToken=${(t) => (sessionStorage.setItem('hookshadow-token', t), setError(null), setToken(t))} />`;
  return html`<div>
    <header><h1>hookshadow serve</h1><span class="muted">global mode <span class=${`mode-${flows?.mode}`} data-testid="global-mode">${flows?.mode ?? '…'}</span></span></header>
    <${Cards} summary=${summary} flows=${flows} />
    <div class="grid">
      <div>
        <${Trend} token=${token} version=${version} />
        <${Flows} token=${token} flows=${flows} onChanged=${refresh} />
        <${Divergences} token=${token} version=${version} />
      </div>
      <${Feed} events=${events} />
    </div>
  </div>`;
}

const root = document.getElementById('app');
// Replace the static "Loading…" placeholder rather than render beside it.
root.replaceChildren();
render(html`<${App} />`, root);
