FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 JARVIS_ENV=production
WORKDIR /app
RUN useradd --create-home --uid 10001 jarvis

COPY pyproject.toml README.md ./
COPY jarvis ./jarvis
RUN pip install .
COPY . .
RUN pip install --no-deps -e . && chown -R jarvis /app

USER jarvis
ENV JARVIS_HOST=0.0.0.0 JARVIS_PORT=8501
EXPOSE 8501
HEALTHCHECK --interval=15s --timeout=5s --retries=5 CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/api/v1/ready').status==200 else 1)"
# `jarvis up`: migrations (one replica at a time, under an advisory lock), then one uvicorn
# process serving the UI and the HTTP API (the app connects as the unprivileged app role).
CMD ["jarvis", "up"]
