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
EXPOSE 8501
HEALTHCHECK --interval=15s --timeout=5s --retries=5 CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health').read()==b'ok' else 1)"
# Migrations run before the UI starts (the app itself connects as the unprivileged app role).
CMD ["sh", "-c", "jarvis db upgrade && exec streamlit run app.py --server.address 0.0.0.0 --server.port 8501"]
