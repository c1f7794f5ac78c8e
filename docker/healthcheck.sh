#!/bin/bash
# Container HEALTHCHECK: GET /health/ready on the server's own address, with bash alone (the
# runtime image has no curl). Exit 0 when the answer is 200, 1 otherwise.
host=${QUANTSERVE_LISTEN:-127.0.0.1}
case $host in 0.0.0.0) host=127.0.0.1 ;; ::) host=::1 ;; esac
port=${QUANTSERVE_PORT:-8080}
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
IFS= read -r -t 4 status <&3 || exit 1
case $status in
    "HTTP/1."?" 200 "*) exit 0 ;;
esac
echo "not ready: $status" >&2
exit 1
