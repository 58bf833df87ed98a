"""What is served: the model, its labels and limits, and its evaluation picture."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from textcnn.artifacts import CONFUSION_FILE, LABEL_F1_FILE, RELIABILITY_FILE, model_file

from ..deps import Authorized, ModelsDep, Ready, SettingsDep
from ..schemas import ERRORS, ErrorBody

router = APIRouter(tags=["model"])


@router.get("/info", responses={401: ERRORS[401], 404: ERRORS[404], 503: ERRORS[503]})
def info(_: Authorized, served: Ready, settings: SettingsDep) -> dict:
    """The model (``?model=``, default the first), its labels, the request limits and its
    training metrics."""
    version = served.current
    classifier = version.classifier
    return {
        "model": version.identity,
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
        "multi_label": classifier.multi_label,
        "temperature": classifier.card.temperature,
        "thresholds": (
            dict(zip(classifier.labels, classifier.card.thresholds, strict=True))
            if classifier.multi_label
            else None
        ),
        "min_labels": classifier.card.min_labels if classifier.multi_label else None,
        "min_score": settings.min_score,
    }


PICTURE = {
    200: {"content": {"image/png": {}}, "description": "the picture"},
    401: ERRORS[401],
    404: {"model": ErrorBody, "description": "no such model, or no such picture"},
    503: ERRORS[503],
}


def picture(served, names: tuple[str, ...]) -> FileResponse:
    """The first of ``names`` the model directory holds as a plain file of its own; 404
    when it holds none (or only a link out of it)."""
    for name in names:
        try:  # the loaded version's directory is the same folder: served.path
            return FileResponse(model_file(served.path, name), media_type="image/png")
        except ValueError:  # missing, or not a plain file inside the model directory
            continue
    raise HTTPException(404, f"this model directory has no {names[0]}")


@router.get("/confusion.png", response_class=FileResponse, responses=PICTURE)
def evaluation_picture(_: Authorized, served: Ready) -> FileResponse:
    """The confusion matrix of the model on its test (else dev) data, as written by
    training; for a multi-label model, its per-label F1."""
    return picture(served, (CONFUSION_FILE, LABEL_F1_FILE))


@router.get("/reliability.png", response_class=FileResponse, responses=PICTURE)
def reliability(_: Authorized, served: Ready) -> FileResponse:
    """The reliability diagram: how often a score is right, before and after calibration."""
    return picture(served, (RELIABILITY_FILE,))


@router.get("/models", responses={401: ERRORS[401]})
def models(_: Authorized, served: ModelsDep) -> dict:
    """Every model this server holds: name, version, task, labels and state (and why a load
    failed), and which one a request without ``model`` asks. Behind the API key when one is
    set."""
    return {"default": served.default, "models": [m.describe() for m in served.served.values()]}


@router.post(
    "/models/{name}/reload",
    responses={
        401: ERRORS[401],
        403: {"model": ErrorBody, "description": "reloads need an API key to be set"},
        404: ERRORS[404],
        409: {"model": ErrorBody, "description": "a reload of this model is running"},
        422: {"model": ErrorBody, "description": "the new version failed its checks"},
    },
)
async def reload(
    name: str, request: Request, _: Authorized, served: ModelsDep, settings: SettingsDep
) -> dict:
    """Load the model directory of ``name`` again, check it completely, and serve it in place
    of the current version (which finishes the requests it took). Needs the API key; a server
    without one refuses, so that an open server cannot be made to reload."""
    if settings.api_key is None:
        raise HTTPException(403, "reloads need TEXTCNN_API_KEY to be set; restart to reload")
    if name not in served.served:
        served.get(name)  # the 404 that names the models
    request.scope["textcnn.model"] = name
    state = request.app.state
    if not await served.reload(name, settings, state.metrics.observe_batch):
        state.metrics.reload_failed(name)
        raise HTTPException(422, served.served[name].error)
    return {"model": served.served[name].current.identity, "state": "ready"}
