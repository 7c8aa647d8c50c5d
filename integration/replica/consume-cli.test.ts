import { TRANSPORTS } from '../support/transports.js'
import { consumeCliSuite } from './consume-cli.js'

if (TRANSPORTS.includes('rabbitmq')) consumeCliSuite('rabbitmq')
