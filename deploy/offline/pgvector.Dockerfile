# Stand-in for the `pgvector/pgvector:<version>-pg<major>` image, built from Debian's PostgreSQL and
# pgvector packages (`make images-offline`). Honours what the official postgres image does for a
# compose file: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB (and POSTGRES_INITDB_ARGS) create
# the cluster on first start in PGDATA (/var/lib/postgresql/data), port 5432 on every address with
# password authentication, trusted local socket, `pg_isready` and `psql` on PATH.
ARG BASE
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
ARG PG_MAJOR
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-${PG_MAJOR} postgresql-${PG_MAJOR}-pgvector \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER postgres
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
