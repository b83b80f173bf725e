# A stand-in for the official nginx image, built by docker/bases.sh from the local Debian base
# with Debian's nginx (1.22 in bookworm). Like the official image: conf.d/*.conf included in the
# http block and no other site, logs to the container's stdout/stderr, SIGQUIT (graceful) to stop.
# wget for docker-compose.yml's health check (the official alpine image has busybox wget).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx wget \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log \
    && nginx -t
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
