import pytest

from assistant.errors import InputError, ModelError
from assistant.pipeline import Assistant, Chunk, Finished, Started
from assistant.memory.recall import session_history


def run(assistant, message, speaker, session_id=None):
    events = list(assistant.turn(message, speaker, session_id))
    return events[0], [e.text for e in events if isinstance(e, Chunk)], events[-1]


def test_a_turn_end_to_end_streams_and_stores(assistant, store):
    alice = store.add_profile("Alice")
    started, chunks, finished = run(assistant, "Hello! Can you suggest a name for my dog?", alice.id)
    assert isinstance(started, Started) and started.person.name == "Alice"
    assert started.route.target == "local"
    assert len(chunks) > 1
    assert isinstance(finished, Finished)
    stored = store.exchange(finished.exchange.id)
    assert stored.status == "complete"
    assert stored.reply == "".join(chunks).strip()
    assert stored.route == "local" and stored.model.startswith("SmolLM2")
    assert stored.tokens == len(chunks) and stored.ttft_ms > 0 and stored.tokens_per_s > 0


def test_the_second_turn_sees_the_first(assistant, store):
    alice = store.add_profile("Alice")
    first = run(assistant, "My favourite colour is green.", alice.id)[2].exchange
    second = run(assistant, "What did I just tell you?", alice.id, first.session_id)[2].exchange
    assert second.session_id == first.session_id
    assert [e.id for e in session_history(store, first.session_id, second.id + 1, 8)] == [first.id, second.id]
    assert session_history(store, first.session_id, second.id, 8)[0].user_text == "My favourite colour is green."


def test_speaker_can_be_created_by_name(assistant, store):
    started = next(assistant.turn("hi", "Dana", create_speaker=True))
    assert store.find_profile("dana").id == started.person.id


def test_a_failed_generation_keeps_the_users_message(settings, store, local):
    class BrokenModel:  # injected fault: the real model cannot be made to fail on demand
        name = "broken"
        fit = local.fit

        def stream(self, prompt, **options):
            yield "Half a"
            raise ModelError("the local model failed while generating: out of memory")

    assistant = Assistant(settings, store=store, local=BrokenModel())
    bob = store.add_profile("Bob")
    with pytest.raises(ModelError):
        list(assistant.turn("Please remember the milk.", bob.id))
    [exchange] = store.session_exchanges(store.sessions(bob.id)[0].id)
    assert exchange.user_text == "Please remember the milk."
    assert exchange.status == "failed" and "out of memory" in exchange.error and exchange.reply == "Half a"


def test_a_reply_abandoned_midway_is_marked_interrupted(assistant, store):
    carol = store.add_profile("Carol")
    stream = assistant.turn("Tell me a long story about a dragon.", carol.id)
    next(stream), next(stream)  # Started, first chunk
    stream.close()
    [exchange] = store.session_exchanges(store.sessions(carol.id)[0].id)
    assert exchange.status == "failed" and "interrupted" in exchange.error
    # The model is free again for the next person.
    assert run(assistant, "Hi", carol.id)[2].exchange.status == "complete"


@pytest.mark.parametrize("message", ["", "   \n\t ", "\x00\x01"])
def test_empty_messages_are_refused_and_nothing_is_stored(assistant, store, message):
    alice = store.add_profile("Alice")
    with pytest.raises(InputError, match="empty"):
        list(assistant.turn(message, alice.id))
    assert store.count_exchanges() == 0


def test_oversized_message_is_refused(assistant, store):
    alice = store.add_profile("Alice")
    with pytest.raises(InputError, match="limit"):
        list(assistant.turn("x" * (assistant.settings.max_message_chars + 1), alice.id))
    assert store.count_exchanges() == 0


def test_never_continues_someone_elses_conversation(assistant, store):
    alice, bob = store.add_profile("Alice"), store.add_profile("Bob")
    alices = run(assistant, "A private note.", alice.id)[2].exchange
    bobs = run(assistant, "Hello", bob.id, alices.session_id)[2].exchange
    assert bobs.session_id != alices.session_id
    assert store.session(bobs.session_id).profile_id == bob.id
