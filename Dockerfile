# dotproxy container image: the three programs, built from source, on an empty base.
#
#   docker build -t dotproxy .
#   docker run --rm dotproxy --version
#   docker run --rm --entrypoint /usr/local/bin/dotproxy-init dotproxy --help
#   docker run --rm --entrypoint /usr/local/bin/dotproxy-cni dotproxy --help
#
# The final image holds only the three binaries (dotproxy-cni: the CNI plugin
# and its node installer), the shared libraries they load
# (with the dynamic loader), a CA bundle, and /etc/passwd + /etc/group naming
# the proxy user (15353, "dotproxy") and nobody. It has no shell.

ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc make libc6-dev libssl-dev libmnl-dev libnftnl-dev libjansson-dev libseccomp-dev \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile VERSION ./
COPY proxy/ proxy/
COPY init/ init/
COPY LICENSE ./
COPY scripts/sbom.sh scripts/
ARG REVISION=unknown
RUN make -j"$(nproc)" GIT_REV="$REVISION" all \
 && build/dotproxy --version && build/dotproxy-init --version \
 && build/dotproxy-cni --version
# Stage the root of the final image under /out.
RUN set -eu; \
    mkdir -p /out/usr/local/bin /out/etc/ssl/certs /out/usr/lib/ssl; \
    for b in dotproxy dotproxy-init dotproxy-cni; do \
      strip --strip-unneeded -o /out/usr/local/bin/$b build/$b; \
    done; \
    libs=$(ldd build/dotproxy build/dotproxy-init build/dotproxy-cni \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u); \
    for l in $libs; do cp -L --parents "$l" /out/; done; \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/; \
    ln -s /etc/ssl/certs/ca-certificates.crt /out/usr/lib/ssl/cert.pem; \
    printf '%s\n' 'root:x:0:0:root:/:/sbin/nologin' \
      'dotproxy:x:15353:15353:dotproxy:/:/sbin/nologin' \
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' >/out/etc/passwd; \
    printf '%s\n' 'root:x:0:' 'dotproxy:x:15353:' 'nogroup:x:65534:' >/out/etc/group; \
    echo "staged:"; find /out ! -type d | sort; du -sh /out
# The SBOM (SPDX 2.3: every library in the binaries, its Debian version and
# licence) and the licences, in the image; scripts/sbom.sh reads dpkg's
# database with jq.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq \
 && rm -rf /var/lib/apt/lists/* \
 && d=/out/usr/share/doc/dotproxy && mkdir -p "$d" && cp LICENSE "$d/" \
 && SOURCE_DATE_EPOCH=0 bash scripts/sbom.sh "$(dpkg --print-architecture)" build "$d/sbom.spdx.json" /out \
 && for p in $(jq -r '.packages[].SPDXID | select(startswith("SPDXRef-deb-")) | ltrimstr("SPDXRef-deb-")' "$d/sbom.spdx.json"); do \
      mkdir -p "/out/usr/share/doc/$p" && cp "/usr/share/doc/$p/copyright" "/out/usr/share/doc/$p/"; \
    done

FROM scratch
# VERSION, REVISION: pass --build-arg VERSION="$(cat VERSION)" and the git revision.
ARG VERSION=0.0.0
ARG REVISION=unknown
# Licences: our code is MIT; each binary adds what it links (README,
# "Licence"): dotproxy OpenSSL (Apache-2.0), libmnl (LGPL-2.1-or-later),
# libseccomp (LGPL-2.1-only); dotproxy-init libnftnl (GPL-2.0-or-later) and
# libmnl; dotproxy-cni libnftnl and jansson (MIT) linked in, and libmnl;
# all of them glibc (LGPL-2.1-or-later). The image adds the CA bundle
# (MPL-2.0).
LABEL org.opencontainers.image.title="dotproxy" \
      org.opencontainers.image.description="Transparent DNS to DNS-over-TLS sidecar: dotproxy (the proxy), dotproxy-init (the one-shot nftables redirect) and dotproxy-cni (the same redirect as a chained CNI plugin)" \
      org.opencontainers.image.source="https://github.com/dotproxy/dotproxy" \
      org.opencontainers.image.licenses="MIT AND Apache-2.0 AND LGPL-2.1-or-later AND LGPL-2.1-only AND GPL-2.0-or-later AND MPL-2.0" \
      io.github.dotproxy.licenses.dotproxy="MIT AND Apache-2.0 AND LGPL-2.1-or-later AND LGPL-2.1-only" \
      io.github.dotproxy.licenses.dotproxy-init="MIT AND GPL-2.0-or-later AND LGPL-2.1-or-later" \
      io.github.dotproxy.licenses.dotproxy-cni="MIT AND GPL-2.0-or-later AND LGPL-2.1-or-later" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/ /
# The metrics/health listener stays on loopback; the HEALTHCHECK reads it.
# SSL_CERT_FILE names the bundle for OpenSSL's default verify paths.
ENV DOTPROXY_METRICS=127.0.0.1:9153 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 15353:15353
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/dotproxy", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/dotproxy"]
