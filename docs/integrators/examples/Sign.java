// Post a JSON file to Gridline intake, signed with an integrator key (JDK 17+ standard library).
//
//   javac Sign.java
//   GRIDLINE_KEY_ID=key_... GRIDLINE_KEY_SECRET=... java Sign report.json [PATH]
//
// PATH is the path to post to, with its query string if any (default /v1/reports; also
// /v1/reports:batch, and either with ?validate_only=true). GRIDLINE_INTAKE_URL is intake's
// address (default http://127.0.0.1:8001). Prints intake's answer, then `HTTP <status>`; exits 1
// unless the status is 2xx. The walk-through is docs/integrators/README.md.

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class Sign {
    private static final HexFormat HEX = HexFormat.of(); // lower-case, as intake compares

    private Sign() {}

    /** What is signed: five lines joined by LF, no LF at the end; the body by its SHA-256. */
    static byte[] canonical(String method, String path, String timestamp, String nonce, byte[] body)
            throws Exception {
        String bodySha256 = HEX.formatHex(MessageDigest.getInstance("SHA-256").digest(body));
        return String.join("\n", method.toUpperCase(), path, timestamp, nonce, bodySha256)
                .getBytes(StandardCharsets.UTF_8);
    }

    /** The four X-Gridline-* headers of one request, with the time now and a new nonce. */
    static Map<String, String> signedHeaders(
            String keyId, String secret, String method, String path, byte[] body) throws Exception {
        String timestamp = Long.toString(Instant.now().getEpochSecond());
        // 32 hex digits: within the 8-64 letters, digits, - or _ intake accepts, never repeated.
        byte[] random = new byte[16];
        new SecureRandom().nextBytes(random);
        String nonce = HEX.formatHex(random);
        Mac mac = Mac.getInstance("HmacSHA256");
        // The key is the secret's UTF-8 bytes exactly as issued: it is not base64-decoded.
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        String signature = HEX.formatHex(mac.doFinal(canonical(method, path, timestamp, nonce, body)));
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("X-Gridline-Key", keyId);
        headers.put("X-Gridline-Timestamp", timestamp);
        headers.put("X-Gridline-Nonce", nonce);
        headers.put("X-Gridline-Signature", signature);
        return headers;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: java Sign BODY.json [PATH]  (GRIDLINE_KEY_ID, GRIDLINE_KEY_SECRET)");
            System.exit(2);
        }
        String path = args.length == 2 ? args[1] : "/v1/reports";
        String url = System.getenv().getOrDefault("GRIDLINE_INTAKE_URL", "http://127.0.0.1:8001");
        // The bytes signed are the bytes sent: never re-serialise the JSON in between.
        byte[] body = Files.readAllBytes(Path.of(args[0]));
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url + path))
                .timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(body));
        signedHeaders(System.getenv("GRIDLINE_KEY_ID"), System.getenv("GRIDLINE_KEY_SECRET"), "POST", path, body)
                .forEach(request::header);
        // HTTP/1.1: the default tries an h2c upgrade first, which intake does not speak.
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        HttpResponse<String> response =
                client.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        System.out.println(response.body());
        System.out.println("HTTP " + response.statusCode());
        System.exit(response.statusCode() / 100 == 2 ? 0 : 1);
    }
}
