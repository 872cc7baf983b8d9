using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core.PagerDuty
{
    /// <summary>One PagerDuty V3 webhook delivery, verified and parsed (issue #30).</summary>
    public sealed class WebhookDelivery
    {
        /// <summary>The event's id (event.id): the same for every retry of one delivery.</summary>
        public string EventId { get; set; }
        public string EventType { get; set; }
        public DateTimeOffset? OccurredAt { get; set; }
        /// <summary>The incident the event is about, as Get-PagerDutyIncident returns it (Address parsed from the alert text).</summary>
        public PagerDutyIncident Incident { get; set; }
    }

    /// <summary>
    /// PagerDuty V3 webhooks as they arrive: the signature (X-PagerDuty-Signature: "v1=&lt;hex HMAC-SHA256 of the raw body&gt;",
    /// several entries when secrets rotate) checked against every configured signing secret in constant time, then the
    /// body parsed. Every refusal is typed and changes nothing; no secret is ever in a message.
    /// </summary>
    public static class PagerDutyWebhook
    {
        public const string SignatureHeader = "X-PagerDuty-Signature";
        /// <summary>PagerDuty's deliveries are small; anything larger is not one.</summary>
        public const int MaxBodyBytes = 1024 * 1024;

        public static WebhookDelivery VerifyAndParse(byte[] body, string signature, IReadOnlyList<Secret> secrets)
        {
            Verify(body, signature, secrets);
            return Parse(body);
        }

        public static void Verify(byte[] body, string signature, IReadOnlyList<Secret> secrets)
        {
            if (secrets == null || secrets.Count == 0)
                throw new OpsException("PagerDutyWebhookNoSecret", OpsErrorCategory.InvalidArgument,
                    "No webhook signing secret is configured, so the delivery cannot be verified; nothing was done.", null,
                    recommendedAction: "Give the subscription's signing secret: -SigningSecretVariable NAME (an environment variable) or -SigningSecret (a SecureString), or set KEYSERVICEOPS_PD_WEBHOOK_SECRET.");
            if (body == null || body.Length == 0) throw Malformed("the body is empty");
            if (body.Length > MaxBodyBytes) throw Malformed($"the body is {body.Length:N0} bytes, more than a PagerDuty delivery ({MaxBodyBytes:N0})");
            var given = (signature ?? "").Split(',').Select(x => x.Trim())
                .Where(x => x.StartsWith("v1=", StringComparison.Ordinal)).Select(x => FromHex(x.Substring(3))).Where(x => x != null).ToList();
            if (given.Count == 0)
                throw new OpsException("PagerDutyWebhookUnsigned", OpsErrorCategory.SecurityError,
                    $"The delivery carries no v1 signature ({SignatureHeader}); it is not acted on.", null,
                    recommendedAction: "Check that the request came from PagerDuty (a V3 webhook subscription signs every delivery) and that the engine passes the headers through.");
            foreach (var secret in secrets)
            {
                byte[] mac;
                using (var h = new HMACSHA256(Encoding.UTF8.GetBytes(secret.Reveal()))) mac = h.ComputeHash(body);
                if (given.Any(g => FixedTimeEquals(g, mac))) return;
            }
            throw new OpsException("PagerDutyWebhookBadSignature", OpsErrorCategory.SecurityError,
                $"The delivery's signature matches none of the {secrets.Count} configured signing secret(s); it is not acted on.", null,
                recommendedAction: "Check the subscription's signing secret (PagerDuty shows it once, when the subscription is made) and that the body reaches us byte for byte (no re-encoding by a proxy).");
        }

        /// <summary>Constant time: the comparison takes as long whatever byte differs.</summary>
        private static bool FixedTimeEquals(byte[] a, byte[] b)
        {
            if (a.Length != b.Length) return false;
            var diff = 0;
            for (int i = 0; i < a.Length; i++) diff |= a[i] ^ b[i];
            return diff == 0;
        }

        private static byte[] FromHex(string hex)
        {
            if (hex.Length != 64) return null;
            var b = new byte[32];
            for (int i = 0; i < 32; i++)
                if (!byte.TryParse(hex.Substring(2 * i, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out b[i])) return null;
            return b;
        }

        public static OpsException Malformed(string why)
            => new OpsException("PagerDutyWebhookMalformed", OpsErrorCategory.InvalidData,
                $"The delivery is not a PagerDuty V3 webhook: {why}; it is not acted on.", null,
                recommendedAction: "Pass the request body exactly as received (bytes or text) with its headers; see docs/unattended.md.");

        public static WebhookDelivery Parse(byte[] body)
        {
            JObject root;
            try
            {
                using (var reader = new JsonTextReader(new StreamReader(new MemoryStream(body), new UTF8Encoding(false, true))) { DateParseHandling = DateParseHandling.None, MaxDepth = 64 })
                    root = JToken.ReadFrom(reader) as JObject;
            }
            catch (Exception e) when (e is JsonException || e is DecoderFallbackException) { throw Malformed("the body is not JSON"); }
            if (!(root?["event"] is JObject ev)) throw Malformed("it has no event object");
            string Text(JToken t) => t is JValue v && v.Type == JTokenType.String ? (string)v : null;
            var d = new WebhookDelivery { EventId = Text(ev["id"]), EventType = Text(ev["event_type"]) };
            if (string.IsNullOrEmpty(d.EventId) || string.IsNullOrEmpty(d.EventType)) throw Malformed("event.id or event.event_type is missing");
            if (d.EventId.Length > 200 || d.EventId.Any(char.IsControl)) throw Malformed("event.id is not an id");
            if (DateTimeOffset.TryParse(Text(ev["occurred_at"]), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)) d.OccurredAt = at.ToUniversalTime();
            if (Text(ev["resource_type"]) == "incident" && ev["data"] is JObject data)
            {
                var id = Text(data["id"]);
                if (string.IsNullOrEmpty(id)) throw Malformed("event.data has no incident id");
                var i = new PagerDutyIncident
                {
                    IncidentId = id, Number = data["number"] is JValue n && n.Type == JTokenType.Integer ? (int)n : 0,
                    Title = SafeText.Neutralize(Text(data["title"])), Status = Text(data["status"]), Urgency = Text(data["urgency"]),
                    Service = Text(data["service"]?["summary"]), ServiceId = Text(data["service"]?["id"]),
                    EscalationPolicy = Text(data["escalation_policy"]?["summary"]), EscalationPolicyId = Text(data["escalation_policy"]?["id"]),
                    HtmlUrl = Text(data["html_url"]),
                };
                if (DateTimeOffset.TryParse(Text(data["created_at"]), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var created)) i.CreatedAt = created.ToUniversalTime();
                var asg = data["assignees"] as JArray ?? new JArray();
                i.Assignees = asg.Select(a => Text(a?["summary"])).Where(x => x != null).ToArray();
                i.AssigneeIds = asg.Select(a => Text(a?["id"])).Where(x => x != null).ToArray();
                if (AlertText.TryParse(Text(data["title"]), out var addr, out var port, out var env, out var url))
                {
                    i.Address = addr; i.Port = port; i.Environment = env; i.HealthUrl = url;
                }
                d.Incident = i;
            }
            return d;
        }
    }

    /// <summary>
    /// Deliveries already seen, by event id (PagerDuty retries a delivery until it is answered 2xx): a file beside the
    /// audit log, one id per line, the last 10,000 kept; appended under a lock, never through a symlink.
    /// </summary>
    public sealed class WebhookReplayGuard
    {
        public const int Keep = 10_000;
        public string Path { get; }
        public WebhookReplayGuard(string path) { Path = path; }

        public static WebhookReplayGuard For(OpsContext c)
            => new WebhookReplayGuard(System.IO.Path.ChangeExtension(c.Safety.AuditLogPath, null) + ".webhook-events.txt");

        /// <summary>True the first time <paramref name="eventId"/> is seen (and records it); false for a replay.</summary>
        public bool FirstTime(string eventId)
        {
            if (string.IsNullOrEmpty(eventId) || eventId.Any(char.IsControl)) throw new ArgumentException("event id", nameof(eventId));
            FileStream opened;
            // Two deliveries at once (PagerDuty retries, several events per incident): the second waits its turn.
            try { opened = SafeFile.OpenExclusive(Path, TimeSpan.FromSeconds(15)); }
            catch (IOException e) when (!(e is UnsafeFileException))
            {
                throw new OpsException("WebhookReplayFileBusy", OpsErrorCategory.ResourceBusy, $"The webhook replay file {Path} stayed locked by another delivery for 15 s; this delivery was not run.", Path,
                    recommendedAction: "PagerDuty retries an unanswered delivery; if this repeats, look for a hung process holding the file.", inner: e);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new OpsException("StateFileUnsafe", OpsErrorCategory.SecurityError, $"The webhook replay file {Path} is not used: {e.Message}.", Path,
                    recommendedAction: "Remove a link someone else may have planted, or point -AuditLogPath at a folder only you can write (a folder every user can write to needs the sticky bit).", inner: e);
            }
            using (var fs = opened)
            {
                var seen = new List<string>();
                using (var r = new StreamReader(fs, new UTF8Encoding(false), false, 4096, leaveOpen: true))
                {
                    string line;
                    while ((line = r.ReadLine()) != null) if (line.Length > 0) seen.Add(line);
                }
                if (seen.Contains(eventId, StringComparer.Ordinal)) return false;
                seen.Add(eventId);
                var keep = seen.Skip(Math.Max(0, seen.Count - Keep)).ToList();
                fs.SetLength(0);
                var bytes = new UTF8Encoding(false).GetBytes(string.Join("\n", keep) + "\n");
                fs.Write(bytes, 0, bytes.Length);
                fs.Flush(true);
                return true;
            }
        }
    }
}
