# The Dunning engine: `dunning worker` by default; the same image runs
# `dunning db migrate` and every other CLI command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 dunning \
    && useradd --system --uid 10001 --gid dunning --create-home --home-dir /home/dunning dunning

WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . \
    && rm -rf build *.egg-info

USER dunning
WORKDIR /home/dunning

CMD ["dunning", "worker"]
