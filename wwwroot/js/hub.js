// One SignalR connection to /hubs/training for the whole page. It remembers what the page
// subscribed to and subscribes again after a reconnect; listeners of 'reconnected' then catch up
// from the REST API (the hub does not replay missed messages). The API key from Settings goes with
// every request of the connection (accessTokenFactory: Authorization header on negotiate and long
// polling, access_token query parameter on WebSockets and server-sent events).
import { apiKey, unauthorized } from './api.js';

const listeners = { progress: new Set(), status: new Set(), log: new Set(), reconnected: new Set(), state: new Set() };
const jobs = new Map(); // jobId → subscriber count
let all = 0;
let connection = null;
let starting = null;
let wake = null; // ends the wait between two failed starts (restart after a new API key)
let state = 'connecting';

/** A handle for the browser console (and the browser tests): the connection and how often it reconnected. */
const debug = { get connection() { return connection; }, reconnects: 0 };
window.beitv2Hub = debug;

function setState(s) {
  state = s;
  for (const f of listeners.state) f(s);
}

export function hubState() { return state; }

/** on('progress' | 'status' | 'log' | 'reconnected' | 'state', handler) → unsubscribe function. */
export function on(event, handler) {
  listeners[event].add(handler);
  return () => listeners[event].delete(handler);
}

function dispatch(event, message) {
  for (const f of listeners[event]) {
    try { f(message); } catch (e) { console.warn('hub listener failed', e); }
  }
}

async function resubscribe() {
  const c = connection;
  if (!c || c.state !== 'Connected') return;
  const calls = [...jobs.keys()].map((id) => c.invoke('Subscribe', id));
  if (all > 0) calls.push(c.invoke('SubscribeAll'));
  await Promise.all(calls);
}

function build() {
  if (!window.signalR) {
    setState('unavailable');
    return null;
  }
  const c = new window.signalR.HubConnectionBuilder()
    .withUrl('/hubs/training', { accessTokenFactory: () => apiKey() })
    // Retry forever: 0, 1, 2, 5, then every 10 s.
    .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (ctx) => [0, 1000, 2000, 5000][ctx.previousRetryCount] ?? 10000 })
    .configureLogging(window.signalR.LogLevel.None)
    .build();
  c.on('progress', (m) => dispatch('progress', m));
  c.on('status', (m) => dispatch('status', m));
  c.on('log', (m) => dispatch('log', m));
  c.onreconnecting(() => setState('reconnecting'));
  c.onreconnected(async () => {
    debug.reconnects++;
    setState('connected');
    try { await resubscribe(); } catch { /* the next reconnect tries again */ }
    dispatch('reconnected');
  });
  c.onclose(() => {
    setState('disconnected');
    // Automatic reconnect gave up (or the first start failed): start again after a pause.
    setTimeout(() => { start(); }, 5000);
  });
  return c;
}

/** Starts (or restarts) the connection; resolves when connected, never rejects. */
export function start() {
  if (starting) return starting;
  starting = (async () => {
    if (!connection) connection = build();
    if (!connection) return;
    let delay = 1000;
    while (connection.state === 'Disconnected') {
      try {
        setState('connecting');
        await connection.start();
        setState('connected');
        await resubscribe();
        dispatch('reconnected');
      } catch (e) {
        // A refused negotiate arrives wrapped (FailedToNegotiateWithServerError): only its text has the status.
        if (e && (e.statusCode === 401 || /Status code '401'/.test(String(e.message)))) {
          setState('unauthorized');
          unauthorized('');
        } else setState('disconnected');
        await new Promise((r) => { wake = r; setTimeout(r, delay); });
        wake = null;
        delay = Math.min(delay * 2, 10000);
      }
    }
  })().finally(() => { starting = null; });
  return starting;
}

/** After the API key changed: a new connection (and token) now, not at the next retry. */
export async function restart() {
  if (connection && connection.state !== 'Disconnected') {
    try { await connection.stop(); } catch { /* stopped anyway */ }
  }
  if (wake) wake();
  return start();
}

export async function subscribe(jobId) {
  jobs.set(jobId, (jobs.get(jobId) || 0) + 1);
  if (connection && connection.state === 'Connected') {
    try { await connection.invoke('Subscribe', jobId); } catch { /* resubscribed on reconnect */ }
  }
}

export async function unsubscribe(jobId) {
  const n = (jobs.get(jobId) || 0) - 1;
  if (n > 0) { jobs.set(jobId, n); return; }
  jobs.delete(jobId);
  if (connection && connection.state === 'Connected') {
    try { await connection.invoke('Unsubscribe', jobId); } catch { /* gone anyway */ }
  }
}

export async function subscribeAll() {
  all++;
  if (all === 1 && connection && connection.state === 'Connected') {
    try { await connection.invoke('SubscribeAll'); } catch { /* resubscribed on reconnect */ }
  }
}

/** There is no UnsubscribeAll on the hub: the page just stops listening (messages are ignored). */
export function unsubscribeAll() {
  all = Math.max(0, all - 1);
}
