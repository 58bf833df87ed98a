"""What is served: the model, its labels and limits, and its evaluation picture."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from textcnn.artifacts import CONFUSION_FILE, model_file

from ..deps import Authorized, Ready, SettingsDep
from ..schemas import ERRORS, ErrorBody

router = APIRouter(tags=["model"])


@router.get("/info", responses={401: ERRORS[401], 503: ERRORS[503]})
def info(_: Authorized, served: Ready, settings: SettingsDep) -> dict:
    """The model, its labels, the request limits and its training metrics."""
    classifier = served.classifier
    return {
        "model": served.identity,
        "architecture": classifier.card.architecture,
        "labels": classifier.labels,
        "max_length_tokens": classifier.max_length,
        "inference": classifier.inference,
        "max_batch_size": settings.max_batch_size,
        "max_texts_per_request": settings.max_texts_per_request,
        "max_text_chars": settings.max_text_chars,
        "max_body_bytes": settings.max_body_bytes,
        "created": classifier.card.created,
        "metrics": classifier.card.metrics,
    }


@router.get(
    "/confusion.png",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {}}, "description": "the picture"},
        401: ERRORS[401],
        404: {"model": ErrorBody, "description": "the model directory has no picture"},
        503: ERRORS[503],
    },
)
def confusion_matrix(_: Authorized, served: Ready) -> FileResponse:
    """The confusion matrix of the model on its test (else dev) data, as written by training."""
    try:
        picture = model_file(served.path, CONFUSION_FILE)
    except ValueError:  # missing, or not a plain file inside the model directory
        raise HTTPException(404, "this model directory has no confusion.png") from None
    return FileResponse(picture, media_type="image/png")
