// People & agents (admins): who may sign in, the agents that act for them,
// what roles allow, and the periodic access review.
import { Stack, Tabs, Text, Title } from "@mantine/core";
import { IconClipboardCheck, IconKey, IconRobot, IconUsers } from "@tabler/icons-react";
import type { User } from "../types";
import { AgentsTab } from "./people/AgentsTab";
import { PeopleTab } from "./people/PeopleTab";
import { ReviewTab } from "./people/ReviewTab";
import { RolesTab } from "./people/RolesTab";

export function People({ me }: { me: User }) {
  return (
    <Stack gap="lg">
      <Stack gap={2}>
        <Title order={2}>People &amp; agents</Title>
        <Text c="dimmed" size="sm">
          Every change here is recorded in the activity log.
        </Text>
      </Stack>
      <Tabs defaultValue="people" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="people" leftSection={<IconUsers size={16} />} data-testid="tab-people">
            People
          </Tabs.Tab>
          <Tabs.Tab value="agents" leftSection={<IconRobot size={16} />} data-testid="tab-agents">
            Agents
          </Tabs.Tab>
          <Tabs.Tab value="roles" leftSection={<IconKey size={16} />} data-testid="tab-roles">
            Roles &amp; access
          </Tabs.Tab>
          <Tabs.Tab value="review" leftSection={<IconClipboardCheck size={16} />} data-testid="tab-review">
            Access review
          </Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="people" pt="md">
          <PeopleTab me={me} />
        </Tabs.Panel>
        <Tabs.Panel value="agents" pt="md">
          <AgentsTab />
        </Tabs.Panel>
        <Tabs.Panel value="roles" pt="md">
          <RolesTab />
        </Tabs.Panel>
        <Tabs.Panel value="review" pt="md">
          <ReviewTab />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}
