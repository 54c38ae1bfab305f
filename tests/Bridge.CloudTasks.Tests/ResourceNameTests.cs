namespace Bridge.CloudTasks.Tests;

public sealed class ResourceNameTests
{
    [Theory]
    [InlineData("projects/my-project/locations/europe-west1")]
    [InlineData("projects/example.com:my-project/locations/us-central1")]
    public void Location_names_round_trip(string text)
    {
        var name = LocationName.Parse(text);
        Assert.Equal(text, name.ToString());
        Assert.Equal(name, LocationName.Parse(name.ToString()));
    }

    [Fact]
    public void Queue_and_task_names_round_trip_and_expose_their_parts()
    {
        var task = TaskName.Parse("projects/p-1/locations/europe-west1/queues/events-q/tasks/Ab_9-x");
        Assert.Equal(("p-1", "europe-west1", "events-q", "Ab_9-x"), (task.ProjectId, task.LocationId, task.QueueId, task.TaskId));
        Assert.Equal("projects/p-1/locations/europe-west1/queues/events-q", task.Queue.ToString());
        Assert.Equal("projects/p-1/locations/europe-west1", task.Queue.Location.ToString());
        Assert.Equal(task, task.Queue.Task("Ab_9-x"));
        Assert.Equal(task, TaskName.Parse(task.ToString()));
    }

    [Fact]
    public void Ids_at_the_length_limits_are_accepted()
    {
        var queue = new QueueName("p", "l", new string('q', 100));
        Assert.Equal(500, queue.Task(new string('t', 500)).TaskId.Length);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("projects/p/locations/l/queues", "does not match")]
    [InlineData("projects/p/locations/l/topics/q", "expected 'queues' where it has 'topics'")]
    [InlineData("projects/p/locations/l/queues/q/tasks/t", "does not match")]
    [InlineData("projects/p/locations/l/queues/under_score", "queue id 'under_score' has the character '_' at position 5")]
    [InlineData("projects/p/locations/l/queues/", "queue id is empty")]
    [InlineData("projects/p!/locations/l/queues/q", "project id 'p!' has the character '!'")]
    [InlineData("projects/p/locations/l l/queues/q", "location id 'l l' has the character ' '")]
    public void Malformed_queue_names_are_rejected_with_a_message_naming_the_problem(string text, string expected)
    {
        Assert.False(QueueName.TryParse(text, out _));
        var error = Assert.Throws<FormatException>(() => QueueName.Parse(text));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_queue_id_over_100_characters_is_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() => new QueueName("p", "l", new string('q', 101)));
        Assert.Contains("101 characters long; at most 100", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("t.1", "'.'")]
    [InlineData("t/1", null)]
    [InlineData("tâsk", "'â'")]
    public void Task_ids_outside_the_allowed_characters_are_rejected(string id, string? character)
    {
        Assert.False(TaskName.TryParse($"projects/p/locations/l/queues/q/tasks/{id}", out _));
        if (character is not null)
        {
            var error = Assert.Throws<ArgumentException>(() => new TaskName("p", "l", "q", id));
            Assert.Contains(character, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_task_id_over_500_characters_is_rejected()
    {
        Assert.False(TaskName.TryParse($"projects/p/locations/l/queues/q/tasks/{new string('t', 501)}", out _));
    }

    [Fact]
    public void Long_input_is_not_echoed_whole_into_the_error()
    {
        var junk = new string('x', 5000) + "!";
        var error = Assert.Throws<FormatException>(() => QueueName.Parse($"projects/{junk}/locations/l/queues/q"));
        Assert.True(error.Message.Length < 400, error.Message);
    }

    [Fact]
    public void Operation_names_round_trip_and_expose_their_parts()
    {
        var operation = OperationName.Parse("projects/p-1/locations/europe-west1/operations/1234567890_abc.DEF-x");
        Assert.Equal(("p-1", "europe-west1", "1234567890_abc.DEF-x"), (operation.ProjectId, operation.LocationId, operation.OperationId));
        Assert.Equal(operation, LocationName.Parse("projects/p-1/locations/europe-west1").Operation("1234567890_abc.DEF-x"));
        Assert.Equal("projects/p-1/locations/europe-west1", operation.Location.ToString());
        Assert.Equal(operation, OperationName.Parse(operation.ToString()));
    }

    [Theory]
    [InlineData("projects/p/locations/l/operations", "does not match")]
    [InlineData("projects/p/locations/l/operations/a/b", "does not match")]
    [InlineData("projects/p/locations/l/queues/q", "expected 'operations' where it has 'queues'")]
    [InlineData("projects/p/locations/l/operations/", "operation id is empty")]
    [InlineData("projects/p/locations/l/operations/a b", "operation id 'a b' has the character ' '")]
    public void Malformed_operation_names_are_rejected_with_a_message_naming_the_problem(string text, string expected)
    {
        Assert.False(OperationName.TryParse(text, out _));
        var error = Assert.Throws<FormatException>(() => OperationName.Parse(text));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
