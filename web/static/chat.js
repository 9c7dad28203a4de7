// The conversation's behaviour: the js_on_load of gr.HTML #conversation (web/ui.py), run once when
// the page mounts it. Gradio gives it `element` (the component's root), `trigger` (fires a
// Python event on the component) and `watch`. Everything is delegated from `element`, so the
// conversation can be redrawn by the server at any time without re-binding anything.
const SWIPE_PX = 80;        // how far a card must travel to count as a swipe
const MAX_CHARS = Number('__MAX_CHARS__') || 2000;   // the API's limit on a message (web/ui.py fills it in)
const root = element;
const scroller = () => root.closest('#conversation') || root;
const cine = (window.cine = window.cine || {});

function cardsOf(item) {
  return document.querySelectorAll(`#conversation .card[data-item="${CSS.escape(String(item))}"]`);
}

// one look for every copy of a card, in every turn: the person's current swipe on that movie
function show(item, state) {
  cardsOf(item).forEach((card) => {
    card.dataset.state = state;
    card.querySelector('.like-btn')?.setAttribute('aria-pressed', String(state === 'like'));
    card.querySelector('.dislike-btn')?.setAttribute('aria-pressed', String(state === 'dislike'));
  });
}

function swipe(card, action) {
  if (!card) return;
  const before = card.dataset.state || 'none';
  if (action === before) return;            // pressing Like on a liked card changes nothing
  if (action === 'undo' && before === 'none') return;
  // the Undo button hides once used: the keyboard's focus goes to the card's Like, not to the page
  const refocus = action === 'undo' && card.contains(document.activeElement);
  send_swipe(card.dataset.item, card.dataset.trace, action, before);
  if (refocus) card.querySelector('.like-btn')?.focus();
}

// ---- nothing lost, nothing pretended: what the server has not confirmed is kept in this tab's
// sessionStorage (it outlives the reload Gradio does once the server is back) and shown as pending
const KEPT = 'cine-pending';
function kept() {
  try { return { messages: [], swipes: {}, ...JSON.parse(sessionStorage.getItem(KEPT) || '{}') }; }
  catch (e) { return { messages: [], swipes: {} }; }
}
function keep(state) { try { sessionStorage.setItem(KEPT, JSON.stringify(state)); } catch (e) { /* private mode */ } }
function pendingLook(item, how) {   // how: 'saving', 'retry' or '' (settled)
  cardsOf(item).forEach((card) => { if (how) card.dataset.pending = how; else delete card.dataset.pending; });
}
// a swipe shows at once, marked "Saving…" until the server's answer (#swipe-status) settles it
function send_swipe(item, trace, action, before) {
  const state = kept();
  const earlier = state.swipes[item];
  state.swipes[item] = { trace, action, before: earlier ? earlier.before : before, at: Date.now(),
                         refused: earlier ? earlier.refused || 0 : 0 };
  keep(state);
  show(item, action === 'undo' ? 'none' : action);
  pendingLook(item, 'saving');
  trigger('swipe', { item_id: Number(item), trace_id: trace, action });
  watchServer();
}

root.addEventListener('click', (event) => {
  const button = event.target.closest('button');
  if (!button) return;
  if (button.dataset.action) {
    swipe(button.closest('.card'), button.dataset.action);
  } else if (button.dataset.example) {
    cine.ask(button.dataset.example);
  }
});

// touch: drag a card right to like it, left to dislike it; vertical drags scroll as usual
// (the card's CSS says touch-action: pan-y, so the browser leaves horizontal moves to us)
let drag = null;
root.addEventListener('touchstart', (event) => {
  const card = event.target.closest('.card');
  if (!card || event.touches.length !== 1 || event.target.closest('button, summary, a')) return;
  const t = event.touches[0];
  drag = { card, x: t.clientX, y: t.clientY, dx: 0, horizontal: null };
}, { passive: true });
root.addEventListener('touchmove', (event) => {
  if (!drag) return;
  const t = event.touches[0];
  const dx = t.clientX - drag.x;
  const dy = t.clientY - drag.y;
  if (drag.horizontal === null && (Math.abs(dx) > 8 || Math.abs(dy) > 8)) drag.horizontal = Math.abs(dx) > Math.abs(dy);
  if (!drag.horizontal) return;
  drag.dx = dx;
  drag.card.style.transform = `translateX(${dx}px) rotate(${dx / 40}deg)`;
  drag.card.classList.toggle('drag-like', dx >= SWIPE_PX);
  drag.card.classList.toggle('drag-dislike', dx <= -SWIPE_PX);
}, { passive: true });
function endDrag() {
  if (!drag) return;
  const { card, dx, horizontal } = drag;
  drag = null;
  card.style.transform = '';
  card.classList.remove('drag-like', 'drag-dislike');
  if (horizontal && Math.abs(dx) >= SWIPE_PX) swipe(card, dx > 0 ? 'like' : 'dislike');
}
root.addEventListener('touchend', endDrag);
root.addEventListener('touchcancel', () => { if (drag) { drag.dx = 0; endDrag(); } });

// the newest answer at the top of the view: its reply and first cards, not the end of the list
function showNewest() {
  const turns = root.querySelectorAll('.turn');
  const box = scroller();
  if (!turns.length) { box.scrollTop = 0; return; }
  const last = turns[turns.length - 1];
  box.scrollTop = last.offsetTop - box.offsetTop - 4;
}
watch('value', () => {
  fit();
  showNewest();
  // a redraw shows the store's swipes: those still on their way keep their pending look
  Object.entries(kept().swipes).forEach(([item, swipe]) => {
    if (cardsOf(item)[0]?.dataset.pending) return;
    show(item, swipe.action === 'undo' ? 'none' : swipe.action);
    pendingLook(item, 'saving');
  });
});

function box() { return document.querySelector('#msg textarea, #msg input'); }
function setBox(text) {
  const input = box();
  if (!input) return;
  input.value = text;
  input.dispatchEvent(new Event('input', { bubbles: true }));
}
cine.box = box;
function escapeHtml(text) {
  const div = document.createElement('div');
  div.textContent = text;
  return div.innerHTML;
}
function pendingArea() {
  const host = document.querySelector('#pending');
  if (!host) return null;
  let area = host.querySelector('.pending-area');
  if (!area) { area = document.createElement('div'); area.className = 'pending-area'; host.appendChild(area); }
  return area;
}

// a message is on its way: shown at once with a typing indicator, and the box is free to type in
cine.skipped = 0;
cine.sending = (message) => {
  if (!message || !message.trim()) { cine.skipped += 1; return; }   // the server ignores it too
  const state = kept();
  state.messages.push(message);
  state.unsent = null;
  keep(state);
  watchServer();
  const area = pendingArea();
  if (area) {
    area.insertAdjacentHTML('beforeend', `<div class="pending-turn"><div class="msg user">${escapeHtml(message)}</div>` +
      '<div class="msg bot typing" role="status"><span class="sr-only">CineAgent is typing</span>' +
      '<span class="dot"></span><span class="dot"></span><span class="dot"></span></div></div>');
  }
  const input = box();
  if (input && input.value === message) setBox('');
  const error = document.querySelector('#chat-error .chat-error');
  if (error) error.remove();
};
// the answer (or the error) is on screen: the oldest pending message goes
cine.sent = () => {
  if (cine.skipped > 0) { cine.skipped -= 1; return; }
  const first = document.querySelector('#pending .pending-turn');
  if (first) first.remove();
  const state = kept();   // answered, or refused with the message put back in the box
  state.messages.shift();
  keep(state);
};
// a draft of the reply while an LLM words it (#reply-draft, from the server): it takes the place of
// the typing indicator in its message's pending bubble. The finished turn replaces the bubble with
// the reply as checked (the LLM's words, or the template's if the check rejected them).
cine.draft = (host) => {
  const note = host.querySelector('[data-draft-for]');
  if (!note) return;
  const pending = [...document.querySelectorAll('#pending .pending-turn')];
  const turn = pending.find((t) => t.querySelector('.msg.user')?.textContent === note.dataset.draftFor) || pending[0];
  const bubble = turn?.querySelector('.msg.bot');
  if (!bubble) return;
  if (!bubble.classList.contains('drafting')) {
    bubble.className = 'msg bot drafting';
    bubble.removeAttribute('role');           // no live region: the finished answer is announced, not each word
    bubble.setAttribute('aria-busy', 'true');
    bubble.innerHTML = '<p class="reply draft"></p>';
  }
  bubble.querySelector('.draft').textContent = note.textContent;
};
// a message that could not be sent goes back to the box, unless something new is typed there
cine.failed = (host) => {
  const note = host.querySelector('[data-failed]');
  if (note && box() && !box().value) setBox(note.dataset.failed);
};
// the server's answer to a swipe: every copy of the card shows the person's actual swipe
cine.settle = (host) => {
  const note = host.querySelector('[data-item]');
  if (!note || !note.dataset.item) return;
  const state = kept();
  const swipe = state.swipes[note.dataset.item];
  // not saved and worth another try (the server busy or getting ready), or refused just after a
  // reconnect, when the restarted server may not know this tab yet: shown undone, tried again
  // (a few times at most for a refusal, so a swipe that can never be saved is let go)
  const refusedEarly = note.dataset.ok === '0' && swipe && (swipe.refused || 0) < 3;
  if ((note.dataset.retry === '1' || refusedEarly) && swipe) {
    if (note.dataset.retry !== '1') { swipe.refused = (swipe.refused || 0) + 1; keep(state); }
    show(note.dataset.item, swipe.before);
    pendingLook(note.dataset.item, 'retry');
    setTimeout(() => { const now = kept().swipes[note.dataset.item]; if (now) send_swipe(note.dataset.item, now.trace, now.action, now.before); }, 3000);
    return;
  }
  show(note.dataset.item, note.dataset.state || 'none');
  pendingLook(note.dataset.item, '');
  delete state.swipes[note.dataset.item];
  keep(state);
};

// the server out of reach: every message not answered goes back to the box with a Retry, every
// swipe not saved is visibly undone and marked for a retry; once the server answers again, the
// swipes are sent again (Gradio reloads the page when it reconnects: this tab's sessionStorage
// brings all of it back)
let down = false;
let failures = 0;
let watching = null;
function unsettled() { const s = kept(); return s.messages.length > 0 || Object.keys(s.swipes).length > 0; }
function watchServer() {
  if (watching) return;
  watching = setInterval(check, 2000);
}
let checking = false;
async function check() {
  if (checking) return;
  checking = true;
  try { await checkOnce(); } finally { checking = false; }
}
async function checkOnce() {
  // only a refused or broken connection is an outage: a slow answer is a busy server, and any
  // status (503 while the models load) is a server that is there
  let up = true;
  try {
    await fetch('healthz', { cache: 'no-store', signal: AbortSignal.timeout(30000) });
  } catch (e) {
    up = e.name === 'TimeoutError' || e.name === 'AbortError';
    console.info(`cine: /healthz did not answer (${e.name}: ${e.message})`);
  }
  if (!up) {
    failures += 1;
    if (failures >= 2 && !down) { down = true; outage(); }
  } else {
    failures = 0;
    if (down) { down = false; back(); }
    if (!unsettled()) { clearInterval(watching); watching = null; }
  }
}
function outage() {
  const state = kept();
  document.querySelectorAll('#pending .pending-turn').forEach((t) => t.remove());
  if (state.messages.length) notSent(state.messages[0]);
  else if (box()?.value.trim()) notSent(box().value);   // typed, maybe sent: Gradio sends nothing while cut off
  Object.entries(state.swipes).forEach(([item, swipe]) => { show(item, swipe.before); pendingLook(item, 'retry'); });
  note('The server cannot be reached. Nothing is lost: unsent messages are back in the box and swipes will be ' +
       'saved when it is back.');
}
// while cut off, Gradio drops a send without a word: say it, the message stays in the box
function sendPressed() {
  if (!box()?.value.trim()) return;
  watchServer();
  if (down) notSent(box().value);
}
document.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && event.target === box()) sendPressed();
}, true);
document.addEventListener('click', (event) => { if (event.target.closest?.('#send')) sendPressed(); }, true);
function back() {
  note('The server is back.');
  setTimeout(() => { if (!down) note(''); }, 6000);
  retrySwipes();
}
// the page is ready once the person line is drawn (while the models load it says so, and the
// conversation is drawn again once they are up: a swipe sent before that redraw would be drawn over)
function pageReady() {
  const who = document.querySelector('#who')?.textContent || '';
  return who.trim() !== '' && !who.includes('Getting the recommender ready');
}
function retrySwipes() {
  if (!pageReady()) { setTimeout(retrySwipes, 500); return; }
  const state = kept();
  Object.entries(state.swipes).forEach(([item, swipe]) => send_swipe(item, swipe.trace, swipe.action, swipe.before));
}
// a message that never got its answer: back in the box (unless something else is typed there),
// named beside it with a Retry
function notSent(message) {
  if (box() && !box().value) setBox(message);
  const state = kept();
  state.unsent = message;
  keep(state);
  const host = document.querySelector('#chat-error');
  if (!host) return;
  host.querySelector('.chat-error')?.remove();
  host.insertAdjacentHTML('afterbegin', '<p class="chat-error lost"><strong>Not sent:</strong> the server could not ' +
    'be reached. Your message is kept in the box. <button type="button" class="retry">Retry</button></p>');
  host.querySelector('.retry').addEventListener('click', () => {
    const state = kept();
    state.messages = [];
    state.unsent = null;
    keep(state);
    host.querySelector('.chat-error')?.remove();
    document.querySelector('#send')?.click();
  });
}
function note(text) {
  const status = document.querySelector('#connection-note') || (() => {
    const p = document.createElement('p');
    p.id = 'connection-note';
    p.setAttribute('role', 'status');
    document.querySelector('#composer')?.insertAdjacentElement('beforebegin', p);
    return p;
  })();
  status.textContent = text;
  fit();   // the note sits above the box: the conversation makes room for it
}
// after a reload (Gradio's, once the server is back; or the person's): what the page before this
// one left unconfirmed, taken now (what this page sends from here on is its own)
const leftover = (() => {
  const state = kept();
  const left = { message: state.messages[0] || state.unsent || null, draft: state.draft || '',
                 swipes: Object.keys(state.swipes) };
  state.messages = [];   // in the box once resumed: sending it again starts over
  keep(state);
  return left;
})();
function resume() {
  if (leftover.message) notSent(leftover.message);
  else if (leftover.draft && box() && !box().value) setBox(leftover.draft);
  resumeSwipes();
}
function resumeSwipes() {
  if (!leftover.swipes.length) return;
  if (!pageReady()) { setTimeout(resumeSwipes, 500); return; }
  const state = kept();
  leftover.swipes.forEach((item) => {
    const swipe = state.swipes[item];
    if (swipe) send_swipe(item, swipe.trace, swipe.action, swipe.before);
  });
  leftover.swipes = [];
}
setTimeout(resume, 1500);
// a paste longer than a message may be is kept whole and said, never cut: the server refuses it in
// the same words if it is sent anyway
function lengthNote() {
  const input = box();
  const composer = document.querySelector('#composer');
  if (!input || !composer) return;
  let note = document.querySelector('#length-note');
  if (!note) {
    note = document.createElement('p');
    note.id = 'length-note';
    note.className = 'chat-error';
    note.setAttribute('role', 'status');
    composer.insertAdjacentElement('afterend', note);
  }
  const n = input.value.length;
  note.textContent = n > MAX_CHARS ? `Your message is ${n.toLocaleString('en')} characters long; messages can be up to ` +
    `${MAX_CHARS.toLocaleString('en')}, so please shorten it before sending.` : '';
}
document.addEventListener('input', (event) => {
  if (event.target !== box()) return;
  lengthNote();
  const state = kept();   // what is typed outlives a reload (Gradio's, when the server is back)
  state.draft = box().value;
  keep(state);
});

// "New conversation": the page starts clean (the server draws the welcome and forgets the copy)
cine.fresh = () => {
  document.querySelector('#chat-error .chat-error')?.remove();
  setBox('');
  box()?.focus();
};
cine.ask = (text) => {
  setBox(text);
  // the box's new value reaches Gradio on its input event; the click follows it
  setTimeout(() => document.querySelector('#send')?.click(), 30);
};
// the conversation takes the height the screen leaves once the header and the message box are
// placed, so the box is on the first screen at any size (the CSS height is the fallback)
function fit() {
  const conv = scroller();
  const composer = document.querySelector('#composer');
  if (!conv || !composer) return;
  const top = conv.getBoundingClientRect().top + window.scrollY;
  const below = composer.getBoundingClientRect().bottom - conv.getBoundingClientRect().bottom;
  const height = Math.max(220, Math.floor(window.innerHeight - top - below - 12));
  conv.style.height = `${height}px`;
}
window.addEventListener('resize', fit);
// the person line above (drawn on load) and the box below change height: fit again then
if (window.ResizeObserver) {
  const watcher = new ResizeObserver(() => fit());
  ['#topbar', '#composer', '#readiness', '#pending'].forEach((sel) => { const el = document.querySelector(sel); if (el) watcher.observe(el); });
}
setTimeout(fit, 0);
// and while the page settles (fonts, the tab's lazy layout on a slow machine)
let settling = 0;
const settle = setInterval(() => { fit(); if (++settling >= 10) clearInterval(settle); }, 500);
showNewest();
