"""The micro-batcher on its own: batching, carry-over, errors isolated to their request."""

import asyncio

import pytest

from service.batching import MicroBatcher
from textcnn import Prediction, Result


class FakeClassifier:
    """Answers each text with its own length; a text containing "boom" fails the call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def classify(self, texts, top_k=None, explain=False, evidence_spans=5):
        self.calls.append(list(texts))
        if any("boom" in t for t in texts):
            raise RuntimeError("the model cannot take this text")
        return [Result([Prediction(str(len(t)), 1.0)], False) for t in texts]


def run(coroutine):
    return asyncio.run(coroutine)


async def ask_all(batcher, requests):
    batcher.start()
    try:
        return await asyncio.gather(
            *(batcher.classify(texts, False) for texts in requests), return_exceptions=True
        )
    finally:
        await batcher.stop()


def label(results):
    return [r.predictions[0].label for r in results]


def test_concurrent_requests_share_a_forward_pass_and_keep_their_order():
    model = FakeClassifier()
    batcher = MicroBatcher(model, max_batch_size=64, max_wait_ms=50)
    answers = run(ask_all(batcher, [["a"], ["bb", "ccc"], ["dddd"]]))
    assert [label(a) for a in answers] == [["1"], ["2", "3"], ["4"]]
    assert model.calls == [["a", "bb", "ccc", "dddd"]]


def test_a_job_that_would_overflow_the_batch_is_carried_to_the_next():
    model = FakeClassifier()
    batcher = MicroBatcher(model, max_batch_size=3, max_wait_ms=50)
    answers = run(ask_all(batcher, [["a", "b"], ["cc", "dd"], ["e"]]))
    assert [label(a) for a in answers] == [["1", "1"], ["2", "2"], ["1"]]
    assert model.calls == [["a", "b"], ["cc", "dd", "e"]]


def test_one_failing_request_fails_alone():
    model = FakeClassifier()
    batcher = MicroBatcher(model, max_batch_size=64, max_wait_ms=50)
    answers = run(ask_all(batcher, [["good"], ["boom"], ["fine", "ok"]]))
    assert label(answers[0]) == ["4"] and label(answers[2]) == ["4", "2"]
    assert isinstance(answers[1], RuntimeError)
    # the shared batch failed once, then every request ran on its own
    assert model.calls[0] == ["good", "boom", "fine", "ok"]
    assert sorted(map(tuple, model.calls[1:])) == [("boom",), ("fine", "ok"), ("good",)]


def test_a_cancelled_request_does_not_stop_the_others():
    model = FakeClassifier()
    batcher = MicroBatcher(model, max_batch_size=64, max_wait_ms=20)

    async def scenario():
        batcher.start()
        try:
            gone = asyncio.create_task(batcher.classify(["left"], False))
            await asyncio.sleep(0)
            gone.cancel()
            answer = await batcher.classify(["stayed"], False)
            with pytest.raises(asyncio.CancelledError):
                await gone
            return answer
        finally:
            await batcher.stop()

    assert label(run(scenario())) == ["6"]
