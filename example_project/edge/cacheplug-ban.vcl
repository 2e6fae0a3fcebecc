# Varnish 7.1 in front of a cacheplug application, without any vmod: for a Varnish without
# varnish-modules. PURGE and BAN with an xkey-purge header both ban every object tagged with
# one of its keys (the ban lurker or the next request removes them). See README.md.
#
# The backend is the application. Its .host and .port lines below are the only place to
# change: cacheplug.testing.VarnishServer rewrites those two lines (and nothing else) in the
# copy it loads, and expects them to keep the form `.host = "<host>";` and `.port = "<port>";`.
# cacheplug-common.vcl, next to this file, holds the rest.
vcl 4.1;

backend default {
    .host = "127.0.0.1";
    .port = "8000";
}

include "./cacheplug-common.vcl";

sub vcl_recv {
    call cacheplug_refuse_strangers;
    if (req.method == "PURGE" && req.http.xkey-purge) {
        call cacheplug_ban_keys;
    }
    call cacheplug_recv;
}
