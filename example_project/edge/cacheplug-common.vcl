# What cacheplug.vcl and cacheplug-ban.vcl share: who may purge, the BAN by keys, where a
# response's keys come from, what may be stored, and what the client sees. It is included by
# them (`include "./cacheplug-common.vcl";`), never loaded on its own: it has no `vcl 4.1;`
# line, no backend and no vcl_recv.

import std;

# Only these addresses may PURGE or BAN; everyone else gets a 405.
acl purgers {
    "127.0.0.1";
    "::1";
}

# Refuse PURGE and BAN from outside the ACL before anything else looks at them.
sub cacheplug_refuse_strangers {
    if ((req.method == "PURGE" || req.method == "BAN") && client.ip !~ purgers) {
        return (synth(405, "Not allowed"));
    }
}

# Ban every object whose xkey header holds one of the keys of the request's xkey-purge header
# as a whole word. The keys are checked first (letters, digits, _ and - only, separated by
# spaces) because they become a regular expression.
sub cacheplug_ban_keys {
    if (req.http.xkey-purge !~ "^ *[A-Za-z0-9_-]+( +[A-Za-z0-9_-]+)* *$") {
        return (synth(400, "xkey-purge: keys of letters, digits, _ and -, separated by spaces"));
    }
    # "k1 k2" becomes "obj.http.xkey ~ (^|[[:space:]])(k1|k2)([[:space:]]|$)". No space in
    # the expression: Varnish 7.1's ban parser cut a quoted "(^| )k1" at its space (a regex
    # compile error), hence [[:space:]].
    set req.http.cacheplug-ban = "obj.http.xkey ~ (^|[[:space:]])(" +
        regsuball(regsuball(req.http.xkey-purge, "^ +| +$", ""), " +", "|") +
        ")([[:space:]]|$)";
    # std.ban, not ban(): ban() fails silently, and a purge that did not happen must not
    # answer 200.
    if (std.ban(req.http.cacheplug-ban)) {
        return (synth(200, "Banned"));
    }
    return (synth(500, "Ban failed: " + std.ban_error()));
}

# BAN with keys bans them; BAN without keys is a client error. A PURGE without keys purges
# the URL it names (Varnish's own purge).
sub cacheplug_recv {
    if (req.method == "BAN") {
        if (req.http.xkey-purge) {
            call cacheplug_ban_keys;
        }
        return (synth(400, "BAN needs an xkey-purge header"));
    }
    if (req.method == "PURGE") {
        return (purge);
    }
    # Anything else: the builtin vcl_recv (requests with Cookie or Authorization are passed).
}

sub vcl_backend_response {
    # The keys are read from xkey; Surrogate-Key (Fastly style, space separated) and Cache-Tag
    # (Cloudflare style, comma separated) are copied there when the app sent no xkey.
    if (!beresp.http.xkey && beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }
    if (!beresp.http.xkey && beresp.http.Cache-Tag) {
        set beresp.http.xkey = regsuball(beresp.http.Cache-Tag, " *, *", " ");
    }
    # Safe default: only what the app marked as shareable by an edge (s-maxage) is stored.
    # Anything else becomes a hit-for-miss object for two minutes: the next requests go to
    # the backend without waiting for one another, and a later cacheable answer is stored.
    if (beresp.http.Cache-Control !~ "(?i)(^|[ ,])s-maxage=") {
        set beresp.uncacheable = true;
        set beresp.ttl = 120s;
        return (deliver);
    }
    # Otherwise the builtin vcl_backend_response: Set-Cookie, private, no-store, no-cache and
    # Vary: * still keep a response out of the cache.
}

sub vcl_deliver {
    # The keys are for Varnish; a request with X-Cacheplug-Debug sees them.
    if (!req.http.X-Cacheplug-Debug) {
        unset resp.http.xkey;
    }
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
