#!/bin/sh
# Layering check: the codecs and phases in protocols/ must not include
# libevent, OpenSSL, spdlog, toml++ or anything from proxy/, tls/ or conf/.
# conf/ must not include libevent/OpenSSL/proxy; tls/ must not include libevent/proxy.
src="$1"
fail=0
check() {
  dir="$1"; pattern="$2"
  hits=$(grep -rnE "#include [<\"]($pattern)" "$src/$dir" 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "layering violation in $dir/:"; echo "$hits"; fail=1
  fi
}
check protocols 'event2/|openssl/|spdlog/|toml\+\+/|proxy/|tls/|conf/'
check conf 'event2/|openssl/|spdlog/|proxy/|tls/'
check tls 'event2/|spdlog/|proxy/'
[ $fail -eq 0 ] && echo "layering ok"
exit $fail
