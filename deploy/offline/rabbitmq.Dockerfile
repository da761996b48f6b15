# Stand-in for the official `rabbitmq:<version>-management` image, built from Debian's
# rabbitmq-server package (`make images-offline`). As upstream: the management plugin enabled,
# AMQP on 5672 and the management UI on 15672, RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS
# create the first user, data in /var/lib/rabbitmq (node name from the container's hostname, so
# give the service a fixed `hostname`), logs on stdout, rabbitmq-diagnostics for health checks.
ARG BASE
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && rabbitmq-plugins enable --offline rabbitmq_management \
    && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq
ENV LANG=C.UTF-8 RABBITMQ_LOGS=- HOME=/var/lib/rabbitmq
USER rabbitmq
VOLUME /var/lib/rabbitmq
EXPOSE 5672 15672
CMD ["rabbitmq-server"]
