using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Azure.Amqp;
using Microsoft.Azure.Amqp.Encoding;
using Microsoft.Azure.Amqp.Framing;
using Microsoft.Azure.Amqp.Sasl;

namespace Bridge.Emulators.ServiceBus.Tests;

/// <summary>
/// The endpoint as any AMQP 1.0 client meets it (other languages' SDKs, or a misbehaving one), through the AMQP library
/// directly: links need a CBS token, tokens are checked, limits hold, bad requests get answers.
/// </summary>
public sealed class RawAmqpTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_link_without_a_token_is_refused_as_unauthorized()
    {
        await using var f = EmulatorFixture.Start();
        var (connection, session) = await ConnectAsync(f);
        var error = await Assert.ThrowsAnyAsync<AmqpException>(() => OpenSenderAsync(session, "orders"));
        Assert.Equal(AmqpErrorCode.UnauthorizedAccess, error.Error.Condition);
        await connection.CloseAsync(Timeout);
    }

    [Theory]
    [InlineData("wrong key", 401)]
    [InlineData("expired", 401)]
    [InlineData("other entity", 401)]
    [InlineData("not a token", 401)]
    [InlineData("valid", 202)]
    public async Task Put_token_checks_signature_expiry_and_scope(string kind, int expected)
    {
        await using var f = EmulatorFixture.Start();
        var (connection, session) = await ConnectAsync(f);
        var now = TimeProvider.System.GetUtcNow();
        var token = kind switch
        {
            "wrong key" => Sas("sb://localhost/orders", "not-the-key", now.AddHours(1)),
            "expired" => Sas("sb://localhost/orders", "SAS_KEY_VALUE", now.AddMinutes(-1)),
            "other entity" => Sas("sb://localhost/other", "SAS_KEY_VALUE", now.AddHours(1)),
            "not a token" => "Bearer eyJhbGciOi",
            _ => Sas("sb://localhost/orders", "SAS_KEY_VALUE", now.AddHours(1)),
        };

        var (status, _) = await PutTokenAsync(session, "sb://localhost/orders", token);
        Assert.Equal(expected, status);
        if (expected == 202)
        {
            await OpenSenderAsync(session, "orders");
        }
        else
        {
            await Assert.ThrowsAnyAsync<AmqpException>(() => OpenSenderAsync(session, "orders"));
        }

        await connection.CloseAsync(Timeout);
    }

    [Fact]
    public async Task A_transfer_over_the_size_limit_closes_that_link_with_message_size_exceeded_and_nothing_else()
    {
        await using var f = EmulatorFixture.Start(o => o.MaxMessageSizeBytes = 64 * 1024);
        var (connection, session) = await ConnectAsync(f);
        await PutTokenAsync(session, "sb://localhost/orders", Sas("sb://localhost/", "SAS_KEY_VALUE", TimeProvider.System.GetUtcNow().AddHours(1)));
        var sender = await OpenSenderAsync(session, "orders");
        Assert.Equal(64UL * 1024, sender.Settings.MaxMessageSize);

        var tooBig = AmqpMessage.Create(new Data { Value = new ArraySegment<byte>(new byte[100 * 1024]) });
        // The server detaches the link with the error; the client library surfaces it as the cancelled send's cause.
        var error = await Assert.ThrowsAnyAsync<Exception>(() => SendAsync(sender, tooBig));
        var amqp = Assert.IsType<AmqpException>(error as AmqpException ?? error.InnerException);
        Assert.Equal(AmqpErrorCode.MessageSizeExceeded, amqp.Error.Condition);
        Assert.Contains("exceeds the limit (65536 bytes)", amqp.Message, StringComparison.Ordinal);

        var next = await OpenSenderAsync(session, "orders");
        var outcome = await SendAsync(next, AmqpMessage.Create(new Data { Value = new ArraySegment<byte>(new byte[1024]) }));
        Assert.Equal(Accepted.Code, outcome.DescriptorCode);
        await connection.CloseAsync(Timeout);
    }

    [Theory]
    [InlineData("com.microsoft:renew-lock", "string body", 400)]
    [InlineData("com.microsoft:renew-lock", "empty map", 400)]
    [InlineData("com.microsoft:peek-message", "wrong types", 400)]
    [InlineData("com.microsoft:update-disposition", "unknown status", 400)]
    [InlineData("com.microsoft:no-such-operation", "empty map", 501)]
    public async Task Malformed_management_requests_get_an_error_status_and_the_link_keeps_working(string operation, string body, int expected)
    {
        await using var f = EmulatorFixture.Start();
        var (connection, session) = await ConnectAsync(f);
        await PutTokenAsync(session, "sb://localhost/orders/$management", Sas("sb://localhost/", "SAS_KEY_VALUE", TimeProvider.System.GetUtcNow().AddHours(1)));
        var management = new RequestResponseAmqpLink("mgmt", session, "orders/$management", null);
        await management.OpenAsync(Timeout);

        var map = new AmqpMap();
        object value = body switch
        {
            "string body" => "not a map",
            "wrong types" => map,
            "unknown status" => map,
            _ => map,
        };
        if (body == "wrong types")
        {
            map[new MapKey("from-sequence-number")] = "one";
            map[new MapKey("message-count")] = 1;
        }
        else if (body == "unknown status")
        {
            map[new MapKey("lock-tokens")] = new[] { Guid.NewGuid() };
            map[new MapKey("disposition-status")] = "shredded";
        }

        var request = AmqpMessage.Create(new AmqpValue { Value = value });
        request.ApplicationProperties.Map["operation"] = operation;
        var response = await management.RequestAsync(request, Timeout);
        Assert.Equal(expected, (int)response.ApplicationProperties.Map["statusCode"]);
        Assert.False(string.IsNullOrEmpty(response.ApplicationProperties.Map["statusDescription"] as string));

        var peek = AmqpMessage.Create(new AmqpValue { Value = new AmqpMap { [new MapKey("from-sequence-number")] = 0L, [new MapKey("message-count")] = 1 } });
        peek.ApplicationProperties.Map["operation"] = "com.microsoft:peek-message";
        Assert.Equal(204, (int)(await management.RequestAsync(peek, Timeout)).ApplicationProperties.Map["statusCode"]);
        await connection.CloseAsync(Timeout);
    }

    [Fact]
    public async Task A_message_whose_sections_do_not_decode_is_rejected_and_the_link_carries_on()
    {
        await using var f = EmulatorFixture.Start();
        var (connection, session) = await ConnectAsync(f);
        await PutTokenAsync(session, "sb://localhost/orders", Sas("sb://localhost/", "SAS_KEY_VALUE", TimeProvider.System.GetUtcNow().AddHours(1)));
        var sender = await OpenSenderAsync(session, "orders");

        // A batch (format 0x80013700) whose entries are not AMQP messages.
        var batch = AmqpMessage.Create([new Data { Value = new ArraySegment<byte>([0x00, 0x53, 0x77, 0xFF, 0xFF]) }]);
        batch.MessageFormat = 0x80013700;
        var outcome = await SendAsync(sender, batch);
        Assert.Equal(Rejected.Code, outcome.DescriptorCode);
        Assert.Equal(AmqpErrorCode.DecodeError, ((Rejected)outcome).Error.Condition);

        Assert.Equal(Accepted.Code, (await SendAsync(sender, AmqpMessage.Create(new AmqpValue { Value = "fine" }))).DescriptorCode);
        await connection.CloseAsync(Timeout);
    }

    static async Task<(AmqpConnection, AmqpSession)> ConnectAsync(EmulatorFixture f)
    {
        var connection = await new AmqpConnectionFactory().OpenConnectionAsync(
            new Uri($"amqp://127.0.0.1:{f.Emulator.Port}"), new SaslAnonymousHandler("MSSBCBS"), Timeout);
        var session = connection.CreateSession(new AmqpSessionSettings());
        await session.OpenAsync(Timeout);
        return (connection, session);
    }

    static async Task<(int Status, string? Description)> PutTokenAsync(AmqpSession session, string audience, string token)
    {
        var cbs = new RequestResponseAmqpLink("cbs", session, "$cbs", null);
        await cbs.OpenAsync(Timeout);
        var request = AmqpMessage.Create(new AmqpValue { Value = token });
        request.ApplicationProperties.Map["operation"] = "put-token";
        request.ApplicationProperties.Map["type"] = "servicebus.windows.net:sastoken";
        request.ApplicationProperties.Map["name"] = audience;
        var response = await cbs.RequestAsync(request, Timeout);
        return ((int)response.ApplicationProperties.Map["status-code"], response.ApplicationProperties.Map["status-description"] as string);
    }

    static async Task<SendingAmqpLink> OpenSenderAsync(AmqpSession session, string address)
    {
        var link = new SendingAmqpLink(session, new AmqpLinkSettings
        {
            LinkName = "sender-" + Guid.NewGuid(),
            Role = false,
            InitialDeliveryCount = 0,
            Source = new Source { Address = Guid.NewGuid().ToString() },
            Target = new Target { Address = address },
        });
        await link.OpenAsync(Timeout);
        return link;
    }

    static Task<Outcome> SendAsync(SendingAmqpLink link, AmqpMessage message) =>
        link.SendMessageAsync(message, new ArraySegment<byte>(Guid.NewGuid().ToByteArray()), AmqpConstants.NullBinary, Timeout);

    static string Sas(string resource, string key, DateTimeOffset expiry)
    {
        var sr = WebUtility.UrlEncode(resource);
        var se = expiry.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var sig = Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(sr + "\n" + se)));
        return $"SharedAccessSignature sr={sr}&sig={WebUtility.UrlEncode(sig)}&se={se}&skn=RootManageSharedAccessKey";
    }
}
