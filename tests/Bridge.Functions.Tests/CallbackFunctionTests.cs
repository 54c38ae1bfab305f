using System.Text.Json;
using Bridge.Core.Internal;
using Bridge.Functions.Functions;
using Bridge.Hosting.Internal;
using Bridge.Testing;
using Microsoft.AspNetCore.Http;

namespace Bridge.Functions.Tests;

public sealed class CallbackFunctionTests : IAsyncLifetime
{
    private PipelineHarness _h = null!;

    public async Task InitializeAsync() => _h = await FunctionHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private async Task<(int Status, IHeaderDictionary Headers, string Body)> ExecuteAsync(IResult result)
    {
        var context = new DefaultHttpContext { RequestServices = _h.Services };
        context.Response.Body = new MemoryStream();
        await result.ExecuteAsync(context);
        context.Response.Body.Position = 0;
        return (context.Response.StatusCode, context.Response.Headers, await new StreamReader(context.Response.Body).ReadToEndAsync());
    }

    [Fact]
    public async Task A_call_without_a_token_is_401_with_a_bearer_challenge_and_a_reason()
    {
        var request = new DefaultHttpContext { RequestServices = _h.Services }.Request;
        request.Method = "POST";
        request.Body = new MemoryStream("x"u8.ToArray());

        var (status, headers, body) = await ExecuteAsync(await _h.Create<CallbackFunction>().RunAsync(request));

        Assert.Equal(401, status);
        Assert.Equal("Bearer", headers.WWWAuthenticate.ToString());
        Assert.Equal("Missing", JsonDocument.Parse(body).RootElement.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Answers_carry_the_outcome_id_or_the_reason_and_retry_after_for_503()
    {
        var ok = await ExecuteAsync(Answers.Callback(new CallbackResponse(200, null, "abc")));
        Assert.Equal(200, ok.Status);
        Assert.Equal("abc", JsonDocument.Parse(ok.Body).RootElement.GetProperty("outcomeId").GetString());

        var busy = await ExecuteAsync(Answers.Callback(new CallbackResponse(503, "SinkUnavailable", null, TimeSpan.FromSeconds(10))));
        Assert.Equal(503, busy.Status);
        Assert.Equal("10", busy.Headers.RetryAfter.ToString());

        var forbidden = await ExecuteAsync(Answers.Callback(new CallbackResponse(403, "AccountNotAllowed", null)));
        Assert.Equal(403, forbidden.Status);
        Assert.Equal("AccountNotAllowed", JsonDocument.Parse(forbidden.Body).RootElement.GetProperty("reason").GetString());
    }
}
