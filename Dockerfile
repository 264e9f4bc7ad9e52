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
    && mkdir -p /var/lib/crmgw && chown crmgw /var/lib/crmgw

# The one folder the gateway writes (audit log, alerts journal, the workers' metrics): deploy/gateway.yaml's
# data_dir. Mount a volume per replica there; the rest of the container may be read-only.
ENV CRMGW_DATA_DIR=/var/lib/crmgw
VOLUME ["/var/lib/crmgw"]

# Rules are NOT baked in: mount them read-only at /etc/crmgw/rules (see docker-compose.yml).
COPY deploy/gateway.yaml /etc/crmgw/gateway.yaml
USER crmgw
EXPOSE 8080
# Workers share the port with SO_REUSEPORT; SIGTERM drains in-flight requests (docker stop's default
# 10 s grace period is shorter than the 30 s drain: use `stop_grace_period` to match).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"
# --workers 2: the workers share one console secret (the configured one, else one the supervisor makes
# up); replicas behind one entry need the same CRMGW_CONSOLE_SECRET (docker-compose.yml).
CMD ["crmgw", "serve", "--config", "/etc/crmgw/gateway.yaml", "--workers", "2"]
