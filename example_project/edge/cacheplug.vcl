# Varnish 7.1 in front of a cacheplug application, with vmod_xkey (Debian: apt-get install
# varnish varnish-modules). PURGE with an xkey-purge header removes every object tagged with
# one of its keys at once; BAN with the same header bans them. See README.md.
#
# The backend is the application. Its .host and .port lines below are the only place to
# change: cacheplug.testing.VarnishServer rewrites those two lines (and nothing else) in the
# copy it loads, and expects them to keep the form `.host = "<host>";` and `.port = "<port>";`.
# cacheplug-common.vcl, next to this file, holds the rest.
vcl 4.1;

import xkey;

backend default {
    .host = "127.0.0.1";
    .port = "8000";
}

include "./cacheplug-common.vcl";

sub vcl_recv {
    call cacheplug_refuse_strangers;
    # Hard purge of every object tagged with one of the keys; answers how many went.
    if (req.method == "PURGE" && req.http.xkey-purge) {
        return (synth(200, "Purged " + xkey.purge(req.http.xkey-purge)));
    }
    call cacheplug_recv;
}
