# Stand-in for the official `python:3.11-slim-bookworm` image, built from Debian 12's own Python 3.11
# where Docker Hub cannot be reached (`make images-offline`). As upstream: `python` and `pip` on
# PATH in /usr/local/bin (a virtual environment there, so pip installs system-wide), LANG C.UTF-8.
# The build context is generated: `pip.conf` carries the certificate bundle this machine's pip trusts.
ARG BASE
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local \
    && ln -s pip /usr/local/bin/pip3.11 2>/dev/null || true
COPY pip.conf ca-bundle.crt /etc/pip/
ENV PIP_CONFIG_FILE=/etc/pip/pip.conf
CMD ["python3"]
