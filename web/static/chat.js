// The conversation's behaviour: the js_on_load of gr.HTML #conversation (web/ui.py), run once when
// the page mounts it. Gradio gives it `element` (the component's root), `trigger` (fires a
// Python event on the component) and `watch`. Everything is delegated from `element`, so the
// conversation can be redrawn by the server at any time without re-binding anything.
const SWIPE_PX = 80;        // how far a card must travel to count as a swipe
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
  show(card.dataset.item, action === 'undo' ? 'none' : action);   // at once; the server settles it
  // the Undo button hides once used: the keyboard's focus goes to the card's Like, not to the page
  if (action === 'undo' && card.contains(document.activeElement)) card.querySelector('.like-btn')?.focus();
  trigger('swipe', { item_id: Number(card.dataset.item), trace_id: card.dataset.trace, action });
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
watch('value', () => { fit(); showNewest(); });

function box() { return document.querySelector('#msg textarea, #msg input'); }
function setBox(text) {
  const input = box();
  if (!input) return;
  input.value = text;
  input.dispatchEvent(new Event('input', { bubbles: true }));
}
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
  if (note && note.dataset.item) show(note.dataset.item, note.dataset.state || 'none');
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
  ['#topbar', '#composer', '#readiness'].forEach((sel) => { const el = document.querySelector(sel); if (el) watcher.observe(el); });
}
setTimeout(fit, 0);
// and while the page settles (fonts, the tab's lazy layout on a slow machine)
let settling = 0;
const settle = setInterval(() => { fit(); if (++settling >= 10) clearInterval(settle); }, 500);
showNewest();
