# supervisor-sessions: supervisord + the sessions plugin + the Management API on 9090.
# Build with --build-arg WITH_DESKTOP=true / WITH_CODE_SERVER=true to include the programs of the optional
# services; ENABLE_DESKTOP / ENABLE_CODE_SERVER then start them (else they are reported unavailable).
FROM python:3.11-slim
ARG WITH_DESKTOP=false
ARG WITH_CODE_SERVER=false

RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm procps git ca-certificates \
 && if [ "$WITH_DESKTOP" = true ]; then apt-get install -y --no-install-recommends \
      tigervnc-standalone-server tigervnc-tools xfce4 dbus-x11 novnc websockify; fi \
 && rm -rf /var/lib/apt/lists/* \
 && npm install -g --ignore-scripts agentic-flow@2 \
 && if [ "$WITH_CODE_SERVER" = true ]; then npm install -g code-server; fi \
 && npm cache clean --force

COPY . /app
RUN pip install --no-cache-dir /app \
 && supervisor-sessions --help >/dev/null

# supervisord runs as root: each session runs as its own user under bubblewrap, in its own cgroup, and the
# API as the service user (see README, Security).
WORKDIR /var/lib/supervisor-sessions
ENV SESSIONS_HOME=/var/lib/supervisor-sessions \
    MANAGEMENT_API_HOST=0.0.0.0 \
    MANAGEMENT_API_PORT=9090
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/health', timeout=4)"
CMD ["supervisor-sessions", "serve"]
