import Foundation
import Hummingbird
import Learning
import NIOCore

/// The page where people see and act on recommendations: pick a user or describe one,
/// see cards (photo, price, area, rooms, reasons), and click, save or sign — each button
/// posts an event. Server-rendered HTML and a small script of our own; nothing is fetched
/// from the internet (photos are drawn here as SVG until listings carry real ones).
enum UserApp {
    static func routes(_ router: Router<BasicRequestContext>, link: CoordinatorLink) {
        router.get("/") { _, _ in html(page(link.state.snapshot)) }
        router.get("/app.js") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: script)))
        }
        router.get("/photos/:id") { _, context -> Response in
            let id = Int((context.parameters.get("id") ?? "").replacingOccurrences(of: ".svg", with: "")) ?? 0
            return Response(status: .ok, headers: [.contentType: "image/svg+xml"], body: .init(byteBuffer: ByteBuffer(string: photo(id))))
        }
    }

    static func html(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func page(_ snapshot: ServingSnapshot?) -> String {
        let users = (snapshot?.usersByID.keys.sorted() ?? []).prefix(200)
        let options = users.map { "<option value=\"\($0)\">user \($0)</option>" }.joined()
        let regions = DemoMarket.regions.map { "<option>\(escape($0.name))</option>" }.joined()
        let status = snapshot.map { "model \(escape($0.modelName)) v\($0.modelVersion), \($0.listingsByID.count) active listings" } ?? "no model loaded yet"
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Tower — homes for you</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:0;background:#f5f5f2;color:#222}
        header{background:#1d3557;color:#fff;padding:12px 20px}header small{opacity:.8}
        form{display:flex;flex-wrap:wrap;gap:8px;align-items:center;padding:12px 20px;background:#fff;border-bottom:1px solid #ddd}
        #cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:14px;padding:20px}
        .card{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;overflow:hidden}
        .card img{width:100%;height:150px;object-fit:cover;display:block}.card .body{padding:10px}
        .price{font-weight:600;font-size:1.1em}.why{font-size:.85em;color:#555;margin:6px 0}
        .card button{margin-right:4px}.done{color:#2a7a2a;font-size:.85em}#message{padding:0 20px;color:#a33}
        </style></head><body>
        <header><b>Tower</b> — homes for you <small id="status">\(status)</small></header>
        <form id="pick"><label>User <select id="user">\(options)</select></label><button type="submit" id="show">Show</button></form>
        <form id="describe"><label>Budget (M KRW) <input id="budget" type="number" value="700" min="1"></label>
        <label>Region <select id="region">\(regions)</select></label>
        <label>Household <input id="household" type="number" value="2" min="1" max="20"></label>
        <label>Risk <input id="risk" type="number" value="0.5" min="0" max="1" step="0.1"></label>
        <button type="submit" id="describeShow">Recommend</button></form>
        <p id="message"></p><div id="cards"></div>
        <script src="/app.js"></script></body></html>
        """
    }

    static let script = """
    'use strict';
    const cards = document.getElementById('cards'), message = document.getElementById('message');
    let currentUser = null;
    function esc(s) { return String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
    function render(data) {
      message.textContent = data.source + ' recommendations from ' + data.model + ' v' + data.model_version;
      cards.innerHTML = data.items.map(it => {
        const l = it.listing || {};
        return '<div class="card" data-listing="' + it.listing_id + '"><img alt="listing ' + it.listing_id + '" src="/photos/' + it.listing_id + '.svg">' +
          '<div class="body"><div class="price">' + esc(l.price) + 'M KRW</div><div>' + esc(l.areaM2) + ' m² · ' + esc(l.rooms) + ' rooms · ' + esc(l.region) + '</div>' +
          '<div class="why">' + it.reasons.map(esc).join(' · ') + '</div>' +
          (currentUser ? ['click', 'save', 'contract'].map(t => '<button class="act" data-type="' + t + '">' + (t === 'contract' ? 'sign' : t) + '</button>').join('') : '') +
          '<span class="done"></span></div></div>';
      }).join('');
    }
    async function show(response) {
      const data = await response.json();
      if (!response.ok) { message.textContent = data.error; cards.innerHTML = ''; return; }
      render(data);
    }
    document.getElementById('pick').addEventListener('submit', async e => {
      e.preventDefault();
      currentUser = Number(document.getElementById('user').value);
      show(await fetch('/v1/recommendations?k=12&user_id=' + currentUser));
    });
    document.getElementById('describe').addEventListener('submit', async e => {
      e.preventDefault();
      currentUser = null;
      const body = {budget: Number(document.getElementById('budget').value), region: document.getElementById('region').value,
                    household_size: Number(document.getElementById('household').value), risk_appetite: Number(document.getElementById('risk').value), k: 12};
      show(await fetch('/v1/recommendations', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)}));
    });
    cards.addEventListener('click', async e => {
      const button = e.target.closest('button.act');
      if (!button || !currentUser) return;
      const card = button.closest('.card'), type = button.dataset.type;
      const event = {event_id: 'web-' + Date.now() + '-' + Math.random().toString(36).slice(2), user_id: currentUser,
                     listing_id: Number(card.dataset.listing), type: type};
      const r = await fetch('/v1/events', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({events: [event]})});
      const data = await r.json();
      card.querySelector('.done').textContent = r.ok ? (type + (data.delivered ? ' recorded' : ' queued')) : data.error;
    });
    """

    /// A drawn stand-in photo: a house whose colours follow the listing id. 2:1, like the
    /// card's image box, so `object-fit: cover` crops nothing (the id label was cut off).
    static func photo(_ id: Int) -> String {
        let hue = (id * 47) % 360
        return """
        <svg xmlns="http://www.w3.org/2000/svg" width="480" height="240" viewBox="0 0 480 240">
        <rect width="480" height="240" fill="hsl(\(hue),45%,80%)"/><rect y="180" width="480" height="60" fill="hsl(\((hue + 90) % 360),35%,55%)"/>
        <polygon points="150,110 240,40 330,110" fill="hsl(\((hue + 180) % 360),40%,40%)"/><rect x="170" y="110" width="140" height="80" fill="#fafafa"/>
        <rect x="225" y="150" width="30" height="40" fill="hsl(\(hue),30%,35%)"/><text x="16" y="44" font-family="sans-serif" font-size="24" fill="#333">#\(id)</text>
        </svg>
        """
    }
}
