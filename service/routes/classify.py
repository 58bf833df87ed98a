"""``POST /classify``: labels and scores for one text or a batch."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from ..deps import Authorized, ModelsDep, SettingsDep
from ..schemas import ERRORS, ClassifyRequest, ClassifyResponse

router = APIRouter(tags=["model"])


@router.post("/classify", responses={200: {"model": ClassifyResponse}, **ERRORS})
async def classify(
    request: Request, body: ClassifyRequest, _: Authorized, models: ModelsDep, settings: SettingsDep
) -> JSONResponse:
    """Labels and scores for one text or a batch, in order; `explain` adds the n-grams;
    `model` names the model (default: the server's first)."""
    served = models.get(body.model)
    request.scope["textcnn.model"] = served.name  # for the metrics
    version = served.current  # the version that answers, even if a new one comes meanwhile
    texts = body.all_texts()
    if len(texts) > settings.max_texts_per_request:
        raise HTTPException(
            413, f"{len(texts)} texts; at most {settings.max_texts_per_request} per request"
        )
    long = [i for i, t in enumerate(texts) if len(t) > settings.max_text_chars]
    if long:
        raise HTTPException(413, f"texts {long[:10]} are over {settings.max_text_chars} characters")
    results = await version.batcher.classify(texts, body.explain)
    multi_label = version.classifier.multi_label
    auto = multi_label and "top_k" not in body.model_fields_set
    k = len(version.classifier.labels) if body.top_k is None else body.top_k
    min_score = body.min_score if "min_score" in body.model_fields_set else settings.min_score
    # Plain dicts in a Response: FastAPI would otherwise validate and serialise the response
    # model again, which cost more than the rest of the request (benchmarks/serving.py); the
    # shape is ClassifyResponse's, as the schema says.
    return JSONResponse(
        {
            "model": version.identity,
            "results": [answer(r, k, auto, multi_label, body.explain, min_score) for r in results],
        }
    )


def answer(
    result, k: int, auto: bool, multi_label: bool, explain: bool, min_score: float | None
) -> dict:
    """One text's answer: the label (null if it abstained), its score, the labels (top k,
    or a multi-label model's assigned ones, each flagged), and the spans behind them."""
    top = result.predictions[0]
    abstained = min_score is not None and top.score < min_score
    given = set(result.assigned)
    shown = [p for p in result.predictions if p.label in given] if auto else result.predictions[:k]
    labels = []
    for p in shown:
        entry = {"label": p.label, "score": p.score}
        if multi_label:
            entry["assigned"] = p.label in given
            if explain:
                spans = (result.label_evidence or {}).get(p.label)
                entry["explanation"] = None if spans is None else [vars(e) for e in spans]
        labels.append(entry)
    return {
        "label": None if abstained or not result.assigned else result.assigned[0],
        "score": top.score,
        "labels": labels,
        "truncated": result.truncated,
        "abstained": abstained,
        "explanation": [vars(e) for e in result.evidence] if explain else None,
    }
