"""``POST /classify``: labels and scores for one text or a batch."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from ..deps import Authorized, Ready, SettingsDep
from ..schemas import ERRORS, ClassifyRequest, ClassifyResponse

router = APIRouter(tags=["model"])


@router.post("/classify", responses={200: {"model": ClassifyResponse}, **ERRORS})
async def classify(
    body: ClassifyRequest, _: Authorized, served: Ready, settings: SettingsDep
) -> JSONResponse:
    """Labels and scores for one text or a batch, in order; `explain` adds the n-grams."""
    texts = body.all_texts()
    if len(texts) > settings.max_texts_per_request:
        raise HTTPException(
            413, f"{len(texts)} texts; at most {settings.max_texts_per_request} per request"
        )
    long = [i for i, t in enumerate(texts) if len(t) > settings.max_text_chars]
    if long:
        raise HTTPException(413, f"texts {long[:10]} are over {settings.max_text_chars} characters")
    results = await served.batcher.classify(texts, body.explain)
    k = len(served.classifier.labels) if body.top_k is None else body.top_k
    # Plain dicts in a Response: FastAPI would otherwise validate and serialise the response
    # model again, which cost more than the rest of the request (benchmarks/serving.py); the
    # shape is ClassifyResponse's, as the schema says.
    return JSONResponse(
        {
            "model": served.identity,
            "results": [
                {
                    "label": r.predictions[0].label,
                    "score": r.predictions[0].score,
                    "labels": [{"label": p.label, "score": p.score} for p in r.predictions[:k]],
                    "truncated": r.truncated,
                    "explanation": [vars(e) for e in r.evidence] if body.explain else None,
                }
                for r in results
            ],
        }
    )
