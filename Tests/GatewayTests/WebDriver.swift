import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import Wire
@testable import CoordinatorKit

/// A failed WebDriver command, as chromedriver reported it (W3C error code and message).
struct WebDriverError: Error, CustomStringConvertible {
    var command: String
    var status: Int
    var code: String
    var message: String
    var description: String { "WebDriver \(command): HTTP \(status) \(code): \(message)" }
}

/// Headless Chromium driven over the W3C WebDriver protocol: chromedriver runs as a child
/// process on a free loopback port and the test talks JSON to it over HTTP.
///
/// Guarantees: `killNow()` leaves no process of this browser behind, whatever state it is in
/// (it finds Chromium's processes by the profile directory only this browser uses, so
/// browsers of other tests running at the same time are not touched); it is synchronous,
/// so a `defer` runs it on every path out of a test, a time limit's cancellation included.
final class Browser: @unchecked Sendable {
    static let chromium = "/usr/bin/chromium"
    static let chromedriver = "/usr/bin/chromedriver"
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: chromium) && FileManager.default.isExecutableFile(atPath: chromedriver)
    }

    /// The key W3C WebDriver gives element references under.
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    let driver: Process
    let port: Int
    let profile: URL
    private(set) var session: String?

    private init(driver: Process, port: Int, profile: URL) {
        self.driver = driver
        self.port = port
        self.profile = profile
    }

    /// Starts chromedriver, waits until it accepts sessions, and opens one headless window.
    static func start(in directory: URL) async throws -> Browser {
        let profile = directory.appendingPathComponent("profile")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        // Binding and releasing a socket blocks: not on the cooperative pool.
        let port = try await onThread { try LocalCluster.freePort() }
        let driver = try LocalCluster.spawn(URL(fileURLWithPath: chromedriver), ["--port=\(port)", "--log-path=\(directory.appendingPathComponent("chromedriver.log").path)"])
        let browser = Browser(driver: driver, port: port, profile: profile)
        do {
            var last = "no answer"
            do {
                try await waitUntil("chromedriver to accept sessions", within: 30) {
                    do {
                        let status = try await browser.command(.GET, "/status") as? [String: Any]
                        last = "\(status ?? [:])"
                        return status?["ready"] as? Bool == true
                    } catch {
                        last = "\(error)"
                        return false
                    }
                }
            } catch {
                throw WebDriverError(command: "GET /status", status: 0, code: "not ready", message: "chromedriver did not become ready in 30 s; last: \(last)")
            }
            let options: [String: Any] = [
                "binary": chromium,
                // --no-sandbox: tests run as root; /dev/shm is small in containers.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--user-data-dir=\(profile.path)", "--window-size=1280,900"],
            ]
            let created = try await browser.command(.POST, "/session", ["capabilities": ["alwaysMatch": ["browserName": "chrome", "goog:chromeOptions": options]]])
            guard let id = (created as? [String: Any])?["sessionId"] as? String else {
                throw WebDriverError(command: "POST /session", status: 200, code: "no session id", message: "\(created ?? "nil")")
            }
            browser.session = id
            return browser
        } catch {
            browser.killNow()
            throw error
        }
    }

    /// Sends one command and returns its `value`; a W3C error becomes a `WebDriverError`.
    @discardableResult
    func command(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        let (status, data) = try await LoopbackHTTP.exchange(port: port, method: method, path: path,
                                                             body: try body.map { try JSONSerialization.data(withJSONObject: $0) })
        let value = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["value"]
        guard status == 200 else {
            let error = value as? [String: Any]
            throw WebDriverError(command: "\(method) \(path)", status: status, code: error?["error"] as? String ?? "?",
                                 message: error?["message"] as? String ?? String(decoding: data, as: UTF8.self))
        }
        return value
    }

    @discardableResult
    private func inSession(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        guard let session else { throw WebDriverError(command: path, status: 0, code: "no session", message: "the browser has quit") }
        return try await command(method, "/session/\(session)\(path)", body)
    }

    func open(_ url: String) async throws {
        try await inSession(.POST, "/url", ["url": url])
    }

    /// Element references of everything matching a CSS selector, in document order.
    func elements(_ css: String) async throws -> [String] {
        let found = try await inSession(.POST, "/elements", ["using": "css selector", "value": css]) as? [[String: Any]] ?? []
        return found.compactMap { $0[Self.elementKey] as? String }
    }

    /// The one element matching `css`; a W3C "no such element" error when none does.
    func element(_ css: String) async throws -> String {
        let found = try await inSession(.POST, "/element", ["using": "css selector", "value": css]) as? [String: Any]
        guard let id = found?[Self.elementKey] as? String else {
            throw WebDriverError(command: "find \(css)", status: 200, code: "no element reference", message: "\(found ?? [:])")
        }
        return id
    }

    func click(_ element: String) async throws {
        try await inSession(.POST, "/element/\(element)/click", [:])
    }

    func text(_ element: String) async throws -> String {
        try await inSession(.GET, "/element/\(element)/text") as? String ?? ""
    }

    func attribute(_ element: String, _ name: String) async throws -> String? {
        try await inSession(.GET, "/element/\(element)/attribute/\(name)") as? String
    }

    /// The viewport as PNG bytes.
    func screenshot() async throws -> Data {
        let encoded = try await inSession(.GET, "/screenshot") as? String ?? ""
        guard let png = Data(base64Encoded: encoded) else {
            throw WebDriverError(command: "screenshot", status: 200, code: "not base64", message: String(encoded.prefix(80)))
        }
        return png
    }

    /// Ends the session (chromedriver closes Chromium), then kills what is left.
    func quit() async {
        if session != nil { _ = try? await inSession(.DELETE, "") }
        session = nil
        killNow()
    }

    /// Kills Chromium's processes and chromedriver at once, without waiting for either.
    func killNow() {
        for pid in Self.processes(mentioning: profile.path) { Glibc.kill(pid, SIGKILL) }
        if driver.isRunning { Glibc.kill(driver.processIdentifier, SIGKILL) }
    }

    /// Live processes whose command line contains `text` (Linux /proc); zombies have an
    /// empty command line, so killed processes drop out as soon as they die.
    static func processes(mentioning text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
            return String(decoding: data, as: UTF8.self).contains(text)
        }
    }
}

/// One HTTP/1.1 request per connection on loopback, over NIO's HTTP codec.
/// FoundationNetworking's URLSession (libcurl) cannot talk to chromedriver: it fails with
/// "Failed writing header" on chromedriver's `Content-Length:250` (no space after the
/// colon, which HTTP allows).
enum LoopbackHTTP {
    /// The status and body; throws if nothing complete arrives within `timeout`, so a
    /// browser that stops answering fails the test instead of hanging it.
    static func exchange(port: Int, method: HTTPMethod, path: String, body: Data?, timeout: Duration = .seconds(60)) async throws -> (Int, Data) {
        try await withThrowingTaskGroup(of: (Int, Data).self) { group in
            group.addTask { try await once(port: port, method: method, path: path, body: body) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw WireError.timedOut(what: "\(method) \(path) on 127.0.0.1:\(port)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private static func once(port: Int, method: HTTPMethod, path: String, body: Data?) async throws -> (Int, Data) {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
            head.headers.add(name: "Host", value: "127.0.0.1:\(port)")
            head.headers.add(name: "Connection", value: "close")
            head.headers.add(name: "Content-Length", value: String(body?.count ?? 0))
            if body != nil { head.headers.add(name: "Content-Type", value: "application/json") }
            try await outbound.write(.head(head))
            if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try await outbound.write(.end(nil))
            var status = 0
            var data = Data()
            for try await part in inbound {
                switch part {
                case let .head(h): status = Int(h.status.code)
                case let .body(b): data.append(contentsOf: b.readableBytesView)
                case .end: return (status, data)
                }
            }
            throw WireError.connectionClosed
        }
    }
}
