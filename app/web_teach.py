"""The Teach tab: teach the local model from the household's own words, and choose whether it answers.

What it shows comes from the engine through ``People``: which sources a run would learn from per
person (``teach_plan``: imported history, corrected replies, allowed cloud answers), the time it
would take and where the tokens/s figure comes from, or the engine's message saying what is
needed (then Start is disabled). Start runs the training in the engine's background thread
(``start_teaching``) so the page stays usable; a timer polls ``teaching_status`` while it runs
(steps, tokens/s, time left), Cancel stops it with nothing written, and the result shows the
held-out loss before and after and a few example replies before and after on held-out exchanges.
One run at a time for the whole server: a second Start, from any login, says one is running.

Teaching learns from everyone's words, so with logins only an admin sees the sources and the
examples and may start or cancel. The "answer with the tuned model" switch is per login (kept
while the server runs, like the cloud mode) and is read by the Chat and Compare tabs.
"""

from __future__ import annotations

import html

import gradio as gr

from app.web_common import Shell, guarded, info, plural
from assistant.errors import AdapterError, TrainingError

SOURCES = (("imported", "imported history"), ("corrected", "corrected replies"), ("cloud", "allowed cloud answers"))
ADMIN_ONLY = "Teaching learns from everyone's words, so only an admin login can see its sources and start it."


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def sources_html(plan) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{counts[key]}</td>" for key, _ in SOURCES)
        + f"<td>{sum(counts.values())}</td></tr>" for name, counts in sorted(plan.people.items()))
    head = "<tr><th>Person</th>" + "".join(f"<th>{label}</th>" for _, label in SOURCES) + "<th>total</th></tr>"
    table = f"<table class='cf-teach-table cf-teach-counts'>{head}{rows}</table>" if rows else "<p>Nothing to learn from yet.</p>"
    summary = (f"<p><b>{plural(plan.exchanges, 'exchange')}</b> from <b>{plural(len(plan.people), 'person', 'people')}</b>."
               " The local model's own unedited replies are never learned from.</p>")
    estimate = (f"<p>Estimated training time: <b>about {duration(plan.seconds)}</b> ({plural(plan.steps, 'step')}, "
                f"about {plan.tokens:,} tokens at {plan.tokens_per_s:.0f} tokens/s, the figure {html.escape(plan.rate_source)}),"
                " plus loading the model and measuring the held-out loss.</p>") if plan.enough else ""
    return summary + table + estimate


def progress_html(status) -> str:
    if status.state == "idle":
        return ""
    if status.state in ("cancelled", "failed"):
        return f"<p class='cf-teach-stopped'>⚠️ {html.escape(status.error)}</p>"
    if status.state == "done":
        return "<p><b>Done:</b> the tuned model is saved and answers local turns for logins that keep it on.</p>"
    p = status.progress
    if p is None:
        return f"<progress></progress><p>{html.escape(status.phase)}…</p>"
    share = p.step / max(p.planned, 1)
    return (f"<progress value='{p.step}' max='{p.planned}'></progress>"
            f"<p>Step {p.step} of {p.planned} ({share:.0%}) · {p.tokens_per_s:.0f} tokens/s · "
            f"about {duration(p.seconds_left)} left · loss {p.loss:.3f} · {html.escape(status.phase)}</p>")


def result_html(result: dict | None) -> str:
    if not result:
        return ""
    lines = [f"<p>Learned from {plural(result['exchanges'], 'exchange')} of {plural(len(result['people']), 'person', 'people')}"
             f" in {duration(result['seconds'])} ({result['tokens_per_s']:.0f} tokens/s, {plural(result['steps'], 'step')}). "
             f"Held-out loss (per reply token, {plural(result['validation_exchanges'], 'exchange')} never trained on): "
             f"<b>{result['val_nll_before']:.3f} → {result['val_nll_after']:.3f}</b>.</p>"]
    samples = result.get("samples") or []
    if samples:
        rows = "".join(
            f"<tr><td><b>{html.escape(s['asker'])}</b>: {html.escape(s['message'])}</td><td>{html.escape(s['real'])}</td>"
            f"<td>{html.escape(s['before'])}</td><td>{html.escape(s['after'])}</td></tr>" for s in samples)
        lines.append("<p>Example replies on held-out exchanges:</p><table class='cf-teach-table'><tr><th>Asked</th>"
                     f"<th>Real reply</th><th>Before</th><th>After</th></tr>{rows}</table>")
    return "".join(lines)


def build(shell: Shell, tab: gr.Tab) -> None:
    people, access = shell.people, shell.access

    def adapter_line() -> str:
        try:
            found = people.tuned_adapter()
        except AdapterError as error:
            return f"⚠️ {html.escape(str(error))}"
        if not found:
            return "No tuned model yet: the base model answers."
        return (f"Tuned model from {found['created_at'][:10]}, learned from {plural(found['exchanges'], 'exchange')} "
                f"of {plural(len(found['people']), 'person', 'people')}.")

    def view(request: gr.Request):
        """Everything the tab shows, and whether the timer should keep polling."""
        status = people.teaching_status()
        admin = access.is_admin(request)
        plan = people.teach_plan() if admin else None
        needed = ADMIN_ONLY if not admin else html.escape(plan.message) if not plan.enough else ""
        can_start = admin and plan.enough and not status.running
        return (sources_html(plan) if admin else "", gr.update(value=needed, visible=bool(needed)),
                gr.update(interactive=can_start), gr.update(interactive=admin and status.running),
                progress_html(status), result_html(status.result) if admin else "", adapter_line(),
                gr.Timer(active=status.running))

    def poll(request: gr.Request):
        """The timer's tick: only the progress while a run goes on (the plan is read again at the end)."""
        status = people.teaching_status()
        if not status.running:
            return view(request)
        return (gr.update(), gr.update(), gr.update(interactive=False), gr.update(interactive=access.is_admin(request)),
                progress_html(status), gr.update(), gr.update(), gr.Timer(active=True))

    def on_show(request: gr.Request):
        return (*view(request), gr.update(value=shell.tuned_choices.get(shell.login_key(request), True)))

    @guarded(1)
    def start(request: gr.Request):
        if not access.is_admin(request):
            raise TrainingError(ADMIN_ONLY)
        people.start_teaching()
        info("Teaching the local model: it runs in the background, you can keep using the app.")
        return gr.Timer(active=True)

    def cancel(request: gr.Request):
        if access.is_admin(request):
            people.cancel_teaching()

    def choose_tuned(use, request: gr.Request):
        shell.tuned_choices[shell.login_key(request)] = bool(use)
        info("The tuned model answers your local turns." if use else "The base model answers your turns.")

    with tab:
        gr.Markdown("### Teach the local model\nThe on-device model learns how this household's replies sound and who "
                    "is asking, from replies a person wrote or a stronger model gave. It stays on this device: "
                    "nothing of it is ever sent to the cloud.", elem_id="cf-teach-intro")
        adapter_state = gr.Markdown(elem_id="cf-teach-adapter")
        use_tuned = gr.Checkbox(value=True, label="Answer my turns with the tuned model (off: the base model)",
                                elem_id="cf-tuned")
        sources = gr.HTML(elem_id="cf-teach-sources")
        needed = gr.Markdown(visible=False, elem_id="cf-teach-needed")
        with gr.Row():
            start_button = gr.Button("Start teaching", variant="primary", interactive=False, elem_id="cf-teach-start")
            cancel_button = gr.Button("Cancel", variant="stop", interactive=False, elem_id="cf-teach-cancel")
        progress = gr.HTML(elem_id="cf-teach-progress")
        result = gr.HTML(elem_id="cf-teach-result")
        timer = gr.Timer(1.0, active=False)

    shown = [sources, needed, start_button, cancel_button, progress, result, adapter_state, timer]
    tab.select(on_show, None, [*shown, use_tuned])
    timer.tick(poll, None, shown, show_progress="hidden")
    start_button.click(start, None, timer, api_name=False).then(view, None, shown)
    cancel_button.click(cancel, None, None, api_name=False).then(view, None, shown)
    use_tuned.input(choose_tuned, use_tuned, None)
