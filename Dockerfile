# The gateway image (also runs the demo CRM: same Python package). Build: docker build -t crmgw .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# Dependencies first (cached layer), then the code; constraints.txt pins the versions the tests ran on.
COPY pyproject.toml README.md constraints.txt ./
COPY gateway ./gateway
COPY democrm ./democrm
COPY detectors ./detectors
RUN pip install -c constraints.txt . && useradd --system --uid 10001 --home /app crmgw \
    && mkdir -p /var/log/crmgw /run/crmgw-metrics && chown crmgw /var/log/crmgw /run/crmgw-metrics

# Rules are NOT baked in: mount them read-only at /etc/crmgw/rules (see docker-compose.yml).
COPY deploy/gateway.yaml /etc/crmgw/gateway.yaml
USER crmgw
EXPOSE 8080
# Workers share the port with SO_REUSEPORT; SIGTERM drains in-flight requests (docker stop's default
# 10 s grace period is shorter than the 30 s drain: use `stop_grace_period` to match).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"
CMD ["crmgw", "serve", "--config", "/etc/crmgw/gateway.yaml", "--workers", "2"]
